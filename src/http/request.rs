//! A framed request made a [`Request`]: the target split into path and query, the query
//! decoded. The head and body come from the connection layer (`wire`, `body`), which has
//! already bounded them: the body is whole and at most [`MAX_BODY`] by the time a handler runs.

use super::wire::Head;
use crate::error::ApiError;
use crate::web::request::Request;

pub const MAX_BODY: usize = 1 << 20;

/// Splits the target and decodes the query of a framed request.
pub fn decode(head: Head, body: Vec<u8>, remote: String) -> Result<Request, ApiError> {
    let mut target = head.target;
    let raw_query = match target.find('?') {
        Some(at) => {
            let query = target[at + 1..].to_string();
            target.truncate(at);
            query
        }
        None => String::new(),
    };
    let query = crate::web::request::decode_pairs(&raw_query).ok_or_else(|| {
        ApiError::Malformed("The query string is not valid UTF-8 percent-encoding.".into())
    })?;
    Ok(Request {
        method: head.method,
        path: target,
        raw_query,
        query,
        headers: head.headers,
        remote,
        body,
    })
}
