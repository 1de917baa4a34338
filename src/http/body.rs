//! Request bodies as they arrive: by `Content-Length`, or in the chunked transfer coding
//! (RFC 9112 §7.1) decoded incrementally, so a body may come in any number of pieces and a
//! waiting connection keeps only what it has so far. Capped at 1 MiB.

use super::request::MAX_BODY;
use super::wire::{Fault, Framing};

/// Chunk extensions and trailers are skipped, but only this many bytes of them.
const MAX_CHUNK_META: usize = 8 * 1024;

/// A body being received: what has arrived, and how much is still to come.
#[derive(Debug)]
pub struct BodyReader {
    pub body: Vec<u8>,
    framing: Pending,
}

#[derive(Debug)]
enum Pending {
    Length(u64),
    Chunked(Chunked),
}

impl BodyReader {
    pub fn new(framing: Framing) -> BodyReader {
        match framing {
            Framing::Length(length) => BodyReader {
                // Grown as bytes arrive: a declared length reserves nothing by itself.
                body: Vec::with_capacity(length.min(64 * 1024) as usize),
                framing: Pending::Length(length),
            },
            Framing::Chunked => BodyReader {
                body: Vec::new(),
                framing: Pending::Chunked(Chunked::default()),
            },
        }
    }

    /// Takes what `input` holds of the body; returns the bytes used and whether it is whole.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, bool), Fault> {
        match &mut self.framing {
            Pending::Length(left) => {
                let take = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                self.body.extend_from_slice(&input[..take]);
                *left -= take as u64;
                Ok((take, *left == 0))
            }
            Pending::Chunked(chunked) => chunked.feed(input, &mut self.body),
        }
    }
}

/// The chunked transfer coding (RFC 9112 §7.1), decoded as it arrives; extensions and trailers
/// are skipped, line ends must be CR LF.
#[derive(Debug, Default)]
struct Chunked {
    state: ChunkState,
    size: u64,
    digits: u8,
    meta: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
}

impl Chunked {
    fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<(usize, bool), Fault> {
        use ChunkState::*;
        let bad = |detail| Err(Fault::malformed(detail));
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            match self.state {
                Data(left) => {
                    let take = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    body.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 { DataCr } else { Data(left) };
                    continue;
                }
                Size => match byte {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.digits == 16 {
                            return bad("A chunk size is too large a number.");
                        }
                        let digit = (byte as char).to_digit(16).unwrap_or(0);
                        self.size = (self.size << 4) | u64::from(digit);
                        self.digits += 1;
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => self.state = Extension,
                    b'\r' if self.digits > 0 => self.state = SizeLf,
                    _ => return bad("A chunk size is not a hexadecimal number."),
                },
                Extension => match byte {
                    b'\r' => self.state = SizeLf,
                    b'\n' => return bad("A chunk extension ends without CR."),
                    _ => {
                        self.meta += 1;
                        if self.meta > MAX_CHUNK_META {
                            return bad("Chunk extensions are too long.");
                        }
                    }
                },
                SizeLf => {
                    if byte != b'\n' {
                        return bad("A chunk size line does not end with CR LF.");
                    }
                    if self.size > (MAX_BODY - body.len()) as u64 {
                        return Err(Fault::TOO_LARGE);
                    }
                    self.state = if self.size == 0 {
                        TrailerStart
                    } else {
                        Data(self.size)
                    };
                    self.size = 0;
                    self.digits = 0;
                }
                DataCr => {
                    if byte != b'\r' {
                        return bad("A chunk's data is longer than its size.");
                    }
                    self.state = DataLf;
                }
                DataLf => {
                    if byte != b'\n' {
                        return bad("A chunk's data does not end with CR LF.");
                    }
                    self.state = Size;
                }
                TrailerStart => {
                    self.state = if byte == b'\r' { EndLf } else { Trailer };
                    if self.state == Trailer {
                        continue;
                    }
                }
                Trailer => match byte {
                    b'\r' => self.state = TrailerLf,
                    b'\n' => return bad("A trailer line ends without CR."),
                    _ => {
                        self.meta += 1;
                        if self.meta > MAX_CHUNK_META {
                            return bad("The trailer is too long.");
                        }
                    }
                },
                TrailerLf => {
                    if byte != b'\n' {
                        return bad("A trailer line does not end with CR LF.");
                    }
                    self.state = TrailerStart;
                }
                EndLf => {
                    if byte != b'\n' {
                        return bad("The chunked body does not end with CR LF.");
                    }
                    return Ok((i + 1, true));
                }
            }
            i += 1;
        }
        Ok((i, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunk(pieces: &[&[u8]]) -> Result<(Vec<u8>, usize), Fault> {
        let mut reader = BodyReader::new(Framing::Chunked);
        let mut used_total = 0;
        for piece in pieces {
            let (used, done) = reader.feed(piece)?;
            used_total += used;
            if done {
                return Ok((reader.body, used_total));
            }
            assert_eq!(used, piece.len());
        }
        panic!("incomplete")
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let wire = b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 0..wire.len() - 4 {
            let (body, used) = dechunk(&[&wire[..split], &wire[split..]]).unwrap();
            assert_eq!(body, b"hello world!");
            assert_eq!(used, wire.len() - 4);
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(dechunk(&bytes).unwrap().0, b"hello world!");
    }

    #[test]
    fn bad_chunk_sizes_are_refused() {
        for wire in [
            &b"FFFFFFFFFFFFFFFFF\r\n"[..],
            b"zz\r\nGET / HTTP/1.1\r\n",
            b"\r\n",
            b"-1\r\n",
            b"3\nabc\r\n",
            b"3\r\nabcd\r\n",
        ] {
            let mut reader = BodyReader::new(Framing::Chunked);
            let fault = reader.feed(wire).expect_err("refused");
            assert_eq!(fault.status, 400, "{:?}", String::from_utf8_lossy(wire));
        }
        let mut reader = BodyReader::new(Framing::Chunked);
        assert_eq!(
            reader.feed(b"100001\r\n").err().map(|f| f.status),
            Some(413)
        );
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let mut reader = BodyReader::new(Framing::Length(5));
        assert_eq!(reader.feed(b"he").unwrap(), (2, false));
        assert_eq!(reader.feed(b"lloGET").unwrap(), (3, true));
        assert_eq!(reader.body, b"hello");
    }
}
