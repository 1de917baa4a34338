//! `GET /v1/vouchers/export.csv`: the native voucher list as CSV, one header row and one row
//! per voucher in storage order, streamed page by page so a million vouchers never sit in
//! memory. The CLI's `vouchd export` writes the same stream to a file.
//!
//! A cell a spreadsheet would run as a formula (one starting with `=`, `+`, `-`, `@`, a tab or
//! a carriage return) is written with a leading `'`, which makes it text; a cell that really
//! starts with `'` gets one more, so an import, which drops one leading `'` from every cell,
//! reads back exactly what was exported. `docs/csv.md` tells users.

use super::ledger::{check_guessing, looks_up_code};
use super::views::VoucherView;
use super::{tenant_of, Ctx};
use crate::auth::scope::{VOUCHERS_READ, VOUCHERS_WRITE};
use crate::domain::query::{bad, parse_list, Filter, ListKind, ParamError};
use crate::domain::voucher::Voucher;
use crate::error::ApiError;
use crate::store::bulk::VoucherCursor;
use crate::store::pins;
use crate::store::Db;
use crate::web::response::Reply;
use std::borrow::Cow;
use std::io::{self, Read};
use time::UtcOffset;

pub const CSV_TYPE: &str = "text/csv; charset=utf-8";

/// The columns of an export, which are also the columns an import reads: every field of the
/// native voucher, with `discount` split into `discount_type` and `discount_value`, and the
/// owner's group (an admin's export holds every group's vouchers: each row says whose it is).
pub const COLUMNS: [&str; 35] = [
    "id",
    "code",
    "client_id",
    "group_id",
    "sku",
    "batch",
    "label",
    "note",
    "amount",
    "remaining_amount",
    "currency",
    "discount_type",
    "discount_value",
    "max_uses",
    "uses",
    "used_at",
    "valid_from",
    "valid_until",
    "validity_value",
    "validity_interval",
    "status",
    "type",
    "taxable",
    "tax_rate",
    "order_number",
    "customer_id",
    "product_id",
    "store_id",
    "purchase_id",
    "reward_id",
    "data",
    "created_at",
    "updated_at",
    "deletable",
    // A voucher PIN's argon2id hash (never the PIN), so a printed voucher comes back with it.
    "pin_hash",
];

/// A CSV writer as exports use it: RFC 4180 line ends, quoting only where a cell needs it.
pub fn csv_writer<W: io::Write>(sink: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(sink)
}

/// Writes one voucher as a row of [`COLUMNS`]: values rendered as the JSON API renders them
/// (amounts as decimal strings, RFC 3339 timestamps at `offset`), null as an empty cell.
pub fn write_voucher<W: io::Write>(
    w: &mut csv::Writer<W>,
    v: &Voucher,
    pin_hash: Option<&str>,
    offset: UtcOffset,
) -> csv::Result<()> {
    let view = VoucherView::new(v, offset);
    fn text(s: Option<&str>) -> &str {
        s.unwrap_or("")
    }
    let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
    let flag = |b: bool| if b { "true" } else { "false" };
    let (discount_type, discount_value) = match &view.discount {
        Some(d) => (d.kind, d.value.as_str()),
        None => ("", ""),
    };
    let (max_uses, uses, validity_value) = (
        number(view.max_uses),
        view.uses.to_string(),
        number(view.validity_value),
    );
    let row: [&str; COLUMNS.len()] = [
        view.id,
        view.code,
        view.client_id,
        &v.group_id,
        text(view.sku),
        text(view.batch),
        text(view.label),
        text(view.note),
        text(view.amount.as_deref()),
        text(view.remaining_amount.as_deref()),
        view.currency,
        discount_type,
        discount_value,
        &max_uses,
        &uses,
        text(view.used_at.as_deref()),
        text(view.valid_from.as_deref()),
        text(view.valid_until.as_deref()),
        &validity_value,
        text(view.validity_interval),
        view.status,
        view.medium,
        flag(view.taxable),
        text(view.tax_rate.as_deref()),
        text(view.order_number),
        text(view.customer_id),
        text(view.product_id),
        text(view.store_id),
        text(view.purchase_id),
        text(view.reward_id),
        text(view.data),
        &view.created_at,
        &view.updated_at,
        flag(view.deletable),
        text(pin_hash),
    ];
    let cells: Vec<Cow<str>> = row.iter().map(|cell| escape_cell(cell)).collect();
    w.write_record(cells.iter().map(|cell| cell.as_bytes()))
}

/// What a cell may start with that a spreadsheet would run as a formula, and the escape
/// itself (so that a value really starting with `'` survives the way back).
const ESCAPED_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// The cell as written to a file: with a leading `'` when it starts like a formula.
pub fn escape_cell(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(ESCAPED_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The cell as read from a file: [`escape_cell`] undone (one leading `'` dropped).
pub fn unescape_cell(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// The CSV of a [`VoucherCursor`] as a `Read`: one page rendered at a time.
pub struct ExportStream {
    cursor: VoucherCursor,
    /// Where PIN hashes are read, when the reader may see them (`None`: the column is empty).
    pins: Option<Db>,
    offset: UtcOffset,
    buf: Vec<u8>,
    pos: usize,
    rows: u64,
    finished: bool,
}

impl ExportStream {
    /// Renders the header and reads the first page, so a store that cannot answer fails here,
    /// before a status line has been sent.
    pub fn new(
        cursor: VoucherCursor,
        pins: Option<Db>,
        offset: UtcOffset,
    ) -> Result<ExportStream, ApiError> {
        let mut stream = ExportStream {
            cursor,
            pins,
            offset,
            buf: Vec::new(),
            pos: 0,
            rows: 0,
            finished: false,
        };
        stream.fill(true)?;
        Ok(stream)
    }

    /// Vouchers rendered so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Renders the next page (after the header, on the first call) into the buffer.
    fn fill(&mut self, header: bool) -> Result<(), ApiError> {
        let page = self.cursor.next_page()?;
        self.finished = page.is_empty();
        let mut sink = std::mem::take(&mut self.buf);
        sink.clear();
        let mut csv = csv_writer(sink);
        let failed = |e: csv::Error| ApiError::internal("export", e);
        if header {
            csv.write_record(COLUMNS).map_err(failed)?;
        }
        for v in &page {
            let pin = match &self.pins {
                Some(conn) => pins::voucher_pin(conn, &v.id)?,
                None => None,
            };
            write_voucher(&mut csv, v, pin.as_deref(), self.offset).map_err(failed)?;
        }
        self.rows += page.len() as u64;
        self.buf = csv
            .into_inner()
            .map_err(|e| ApiError::internal("export", e.error()))?;
        self.pos = 0;
        Ok(())
    }
}

impl Read for ExportStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.finished {
                return Ok(0);
            }
            if let Err(err) = self.fill(false) {
                let cause = err.log_message().unwrap_or("the store refused");
                eprintln!("vouchd: export stopped after {} rows: {cause}", self.rows);
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

/// The filters of an export query: the native list's, strictly parsed. Paging and sorting
/// do not apply (an export is the whole result in storage order) and are refused by name.
pub fn export_filters(
    pairs: &[(String, String)],
    offset: UtcOffset,
) -> Result<Vec<Filter>, ParamError> {
    if let Some((name, _)) = pairs
        .iter()
        .find(|(name, _)| matches!(name.as_str(), "page" | "per_page" | "sort"))
    {
        return Err(bad(
            name,
            "does not apply: an export is the whole result, in the order the vouchers \
                      were stored",
        ));
    }
    Ok(parse_list(pairs, ListKind::Vouchers, offset)?.filters)
}

pub fn export_vouchers(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    let filters = export_filters(&ctx.req.query, ctx.app.offset)?;
    let by_code = looks_up_code(&filters);
    if by_code {
        check_guessing(ctx, &token)?;
    }
    let conn = ctx.app.store.reader()?;
    let cursor = VoucherCursor::open(conn, &tenant_of(&token), &filters)?;
    // PIN hashes only for a client that may import them back (and create vouchers anyway).
    let pins = match token.scopes.contains(VOUCHERS_WRITE) {
        true => Some(ctx.app.store.reader()?),
        false => None,
    };
    let stream = ExportStream::new(cursor, pins, ctx.app.offset)?;
    if by_code && stream.rows() == 0 {
        ctx.app.guesses.fail(&token.client_id);
    }
    Ok(Reply::stream(200, CSV_TYPE, stream).with_header(
        "Content-Disposition",
        "attachment; filename=\"vouchers.csv\"",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_like_formulas_are_escaped_and_come_back_exactly() {
        for (value, written) in [
            ("=1+2", "'=1+2"),
            ("+49 30 1234", "'+49 30 1234"),
            ("-5", "'-5"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'quoted", "''quoted"),
            ("''", "'''"),
            ("'", "''"),
            ("a=b", "a=b"),
            ("10.50", "10.50"),
            ("2025-01-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00"),
            ("", ""),
            (" =x", " =x"),
        ] {
            assert_eq!(escape_cell(value), written, "{value:?}");
            assert_eq!(unescape_cell(&escape_cell(value)), value, "{value:?}");
        }
    }
}
