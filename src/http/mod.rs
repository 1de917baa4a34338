//! HTTP: vouchd's own HTTP/1.1 server on `httparse` — framing and limits ([`wire`], [`body`]), the
//! connections and their caps ([`conn`]), epoll ([`poll`]), the workers that read and answer
//! ([`worker`], [`write`]), the accept loop and shutdown ([`server`]), the client's address
//! behind a trusted proxy ([`proxy`]) — then the route table ([`router`]) and the decoding of a
//! framed request ([`request`]). The request and reply types themselves are `crate::web`'s,
//! shared with `api`, so `api` never imports `http`.

pub mod body;
pub mod conn;
pub mod host;
pub mod poll;
pub mod proxy;
pub mod request;
pub mod router;
pub mod server;
pub mod turns;
pub mod wire;
pub mod worker;
pub mod write;
