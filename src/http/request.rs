//! A framed request made a [`Request`]: the target split into path and query, the query
//! decoded. The head and body come from the connection layer (`wire`, `body`), which has
//! already bounded them: the body is whole and at most [`MAX_BODY`] by the time a handler runs.

use super::wire::Head;
use crate::web::request::Request;

pub const MAX_BODY: usize = 1 << 20;

/// Splits the target and decodes the query of a framed request (one that does not decode is
/// marked, for the router to refuse in the route's own shape).
pub fn decode(head: Head, body: Vec<u8>, remote: String) -> Request {
    let mut target = head.target;
    let raw_query = match target.find('?') {
        Some(at) => {
            let query = target[at + 1..].to_string();
            target.truncate(at);
            query
        }
        None => String::new(),
    };
    let query = crate::web::request::decode_pairs(&raw_query);
    Request {
        method: head.method,
        path: target,
        raw_query,
        query_malformed: query.is_none(),
        query: query.unwrap_or_default(),
        headers: head.headers,
        remote,
        body,
    }
}
