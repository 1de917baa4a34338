//! A CareCloud list longer than one page, sent as it is read: `count` has no maximum (the
//! vendor documents none), so the reply is rendered page by page from one read snapshot, as the
//! CSV export is, and never held whole in memory.

use super::shape::CareVoucher;
use crate::domain::query::ListQuery;
use crate::domain::voucher::{Tenant, Voucher};
use crate::error::ApiError;
use crate::store::vouchers;
use crate::store::Db;
use std::io::{self, Read};
use time::UtcOffset;

/// Vouchers read and rendered at a time; a list of at most this many is answered whole.
pub const PAGE: u64 = 500;

/// `{"data":{"vouchers":[…],"total_items":N}}` of a query, rendered a page at a time.
pub struct CareStream {
    conn: Db,
    tenant: Tenant,
    query: ListQuery,
    offset: UtcOffset,
    with_stores: bool,
    /// Vouchers rendered so far, and the list's total (from the first page).
    sent: u64,
    total: u64,
    buf: Vec<u8>,
    pos: usize,
    finished: bool,
}

impl CareStream {
    /// Opens the snapshot and renders the first page, so a store that cannot answer fails
    /// here, before a status line has been sent. Also returns the list's total.
    pub fn new(
        conn: Db,
        tenant: Tenant,
        query: ListQuery,
        offset: UtcOffset,
        with_stores: bool,
    ) -> Result<(CareStream, u64), ApiError> {
        vouchers::begin_snapshot(&conn)?;
        let mut stream = CareStream {
            conn,
            tenant,
            query,
            offset,
            with_stores,
            sent: 0,
            total: 0,
            buf: br#"{"data":{"vouchers":["#.to_vec(),
            pos: 0,
            finished: false,
        };
        let (page, total) = stream.next_page()?;
        stream.total = total;
        stream.render(&page)?;
        Ok((stream, total))
    }

    /// The next page of the list, at most [`PAGE`] vouchers and never past `count`.
    fn next_page(&mut self) -> Result<(Vec<Voucher>, u64), ApiError> {
        let left = self.query.per_page.saturating_sub(self.sent);
        if left == 0 {
            return Ok((Vec::new(), self.total));
        }
        let page = ListQuery {
            page: 1,
            per_page: left.min(PAGE),
            offset: self.query.offset.saturating_add(self.sent),
            ..self.query.clone()
        };
        Ok(vouchers::list(&self.conn, &self.tenant, &page)?)
    }

    /// Appends a page to the buffer; an empty or short page ends the array and the reply.
    fn render(&mut self, page: &[Voucher]) -> Result<(), ApiError> {
        let failed = |e: serde_json::Error| ApiError::internal("carecloud list", e);
        for v in page {
            if self.sent > 0 {
                self.buf.push(b',');
            }
            let view = CareVoucher::new(v, self.offset, self.with_stores);
            serde_json::to_writer(&mut self.buf, &view).map_err(failed)?;
            self.sent += 1;
        }
        let asked = self.query.per_page.saturating_sub(self.sent);
        if (page.len() as u64) < PAGE || asked == 0 {
            self.buf
                .extend_from_slice(format!(r#"],"total_items":{}}}}}"#, self.total).as_bytes());
            self.finished = true;
            vouchers::end_snapshot(&self.conn)?;
        }
        Ok(())
    }

    fn fill(&mut self) -> Result<(), ApiError> {
        self.buf.clear();
        self.pos = 0;
        let (page, _) = self.next_page()?;
        self.render(&page)
    }
}

impl Read for CareStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.finished {
                return Ok(0);
            }
            if let Err(err) = self.fill() {
                let cause = err.log_message().unwrap_or("the store refused");
                eprintln!(
                    "vouchd: CareCloud list stopped after {} vouchers: {cause}",
                    self.sent
                );
                self.finished = true;
                return Err(io::Error::other(cause.to_string()));
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
