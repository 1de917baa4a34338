//! `POST /v1/vouchers/import` (and `vouchd import`): a CSV in the export's format read row by
//! row into vouchers by the very rules of `POST /v1/vouchers`, then inserted all or nothing.
//!
//! Each row becomes the JSON object a client would send (typed by column: numbers, booleans,
//! a nested `discount`) and goes through [`read_voucher`]; only what an export carries beyond
//! a create body is read here: the `id`, the balance (`remaining_amount`), a discount's `uses`
//! and `used_at`, `created_at`, and a PIN's hash (`pin_hash`, stored once the rows are in).
//! An empty cell is a value left out. Every cell first loses
//! one leading `'`, the escape an export puts before cells that start like a formula.

use super::export::{unescape_cell, COLUMNS};
use super::fields::Fields;
use super::idempotency::{self, finish_write};
use super::native::{read_code, read_voucher, Issuer};
use super::Ctx;
use crate::auth::scope::VOUCHERS_WRITE;
use crate::auth::secret;
use crate::domain::clock::{self, DayEnd};
use crate::domain::code::{new_id, CodeShape, ID_ALPHABET, ID_LEN};
use crate::domain::voucher::Voucher;
use crate::error::{ApiError, FieldError};
use crate::store::bulk::{self, ImportRow};
use crate::store::pins;
use crate::store::Db;
use crate::web::response::Reply;
use serde_json::{json, Map, Value};
use std::io::Read;

/// Columns an import reads but does not take: the owner (client and group) is the importing
/// client, and the rest is the server's to keep.
const IGNORED: &[&str] = &["client_id", "group_id", "updated_at", "deletable"];
/// Columns beyond a create body, read by [`read_row`] itself.
const CARRIED: &[&str] = &["id", "remaining_amount", "uses", "used_at", "created_at"];

/// Reads an import's CSV into [`ImportRow`]s, one per data row, as an iterator. A row that is
/// not CSV (a wrong number of cells, bytes that are not UTF-8) ends the iteration and is kept
/// in [`ImportReader::failure`]: the import must then fail with it.
pub struct ImportReader<R: Read> {
    records: csv::StringRecordsIntoIter<R>,
    columns: Vec<String>,
    issuer: Issuer,
    now: i64,
    row: u64,
    pub failure: Option<ApiError>,
    /// `(voucher id, PIN hash)` of the rows read so far that carry a `pin_hash`: stored by
    /// [`set_pins`] once the rows are inserted.
    pub pins: Vec<(String, String)>,
}

impl<R: Read> ImportReader<R> {
    /// Reads and checks the header row: every column must be one of the export's, once.
    pub fn new(input: R, issuer: Issuer, now: i64) -> Result<ImportReader<R>, ApiError> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::Headers)
            .from_reader(input);
        let header = csv.headers().map_err(|e| syntax_error(&e))?;
        if header.iter().all(str::is_empty) {
            return Err(ApiError::Malformed(
                "The CSV is empty; a header row naming the columns is expected.".into(),
            ));
        }
        let columns: Vec<String> = header.iter().map(str::to_string).collect();
        check_header(&columns)?;
        Ok(ImportReader {
            records: csv.into_records(),
            columns,
            issuer,
            now,
            row: 0,
            failure: None,
            pins: Vec::new(),
        })
    }
}

impl<R: Read> Iterator for ImportReader<R> {
    type Item = ImportRow;

    fn next(&mut self) -> Option<ImportRow> {
        if self.failure.is_some() {
            return None;
        }
        match self.records.next()? {
            Ok(record) => {
                self.row += 1;
                let cells = self.columns.iter().map(String::as_str).zip(record.iter());
                let pin = cells
                    .clone()
                    .find(|(column, _)| *column == "pin_hash")
                    .map(|(_, cell)| unescape_cell(cell))
                    .filter(|cell| !cell.is_empty());
                let (mut voucher, code_generated) = read_row(cells, &self.issuer, self.now);
                match (pin, &mut voucher) {
                    (Some(hash), Ok(v)) if secret::is_secret_hash(hash) => {
                        self.pins.push((v.id.clone(), hash.to_string()));
                    }
                    (Some(hash), result) if !secret::is_secret_hash(hash) => {
                        let error = FieldError::new(
                            "pin_hash",
                            "must be an argon2id hash, as an export writes it",
                        );
                        match result {
                            Ok(_) => voucher = Err(vec![error]),
                            Err(errors) => errors.push(error),
                        }
                    }
                    _ => {}
                }
                Some(ImportRow {
                    row: self.row,
                    voucher,
                    code_generated,
                })
            }
            Err(e) => {
                self.failure = Some(syntax_error(&e));
                None
            }
        }
    }
}

fn check_header(columns: &[String]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (i, name) in columns.iter().enumerate() {
        if name.is_empty() {
            errors.push(FieldError::new(
                format!("column {}", i + 1),
                "has no name in the header",
            ));
        } else if !COLUMNS.contains(&name.as_str()) {
            errors.push(FieldError::new(
                name,
                "is not a column of the export format",
            ));
        } else if columns[..i].contains(name) {
            errors.push(FieldError::new(name, "appears twice in the header"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(errors))
    }
}

/// A row that is not CSV: 400, naming the row (1 = the first after the header).
fn syntax_error(err: &csv::Error) -> ApiError {
    let row = err.position().map(|p| p.record());
    let what = match (err.kind(), row) {
        (
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            },
            Some(row),
        ) => {
            format!("Row {row} has {len} cells; the header has {expected_len}.")
        }
        (csv::ErrorKind::Utf8 { .. }, Some(0)) => "The header row is not valid UTF-8.".into(),
        (csv::ErrorKind::Utf8 { .. }, Some(row)) => format!("Row {row} is not valid UTF-8."),
        _ => format!("The CSV cannot be read: {err}."),
    };
    ApiError::Malformed(what)
}

/// A cell as the JSON value a client would send for that field.
fn cell_value(column: &str, cell: &str) -> Value {
    match column {
        "max_uses" | "validity_value" | "uses" => match cell.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::from(cell),
        },
        "taxable" => match cell {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => Value::from(cell),
        },
        _ => Value::from(cell),
    }
}

/// Reads one row (pairs of column and cell) into a voucher owned by `issuer`, imported `now`.
/// Also says whether the code was generated for want of one.
pub fn read_row<'a>(
    cells: impl Iterator<Item = (&'a str, &'a str)>,
    issuer: &Issuer,
    now: i64,
) -> (Result<Voucher, Vec<FieldError>>, bool) {
    let mut body = Map::new();
    let mut carried = Map::new();
    let mut discount = Map::new();
    let mut refused = Vec::new();
    let cells = cells.map(|(column, cell)| (column, unescape_cell(cell)));
    for (column, cell) in cells.filter(|(_, cell)| !cell.is_empty()) {
        // No stored text holds a NUL (PostgreSQL's cannot): refused alike on both engines.
        if cell.contains('\0') {
            refused.push(FieldError::new(column, "must not hold a NUL character"));
            continue;
        }
        let value = cell_value(column, cell);
        match column {
            "discount_type" => discount.insert("type".into(), value),
            "discount_value" => discount.insert("value".into(), value),
            c if CARRIED.contains(&c) => carried.insert(c.into(), value),
            c if IGNORED.contains(&c) => None,
            "pin_hash" => None,
            c => body.insert(c.into(), value),
        };
    }
    if !discount.is_empty() {
        body.insert("discount".into(), Value::Object(discount));
    }
    let mut c = Fields::new(carried);
    let id = match c.text("id", 64).value() {
        Some(id) if is_id(&id) => Some(id),
        Some(_) => {
            c.error("id", format!("must be {ID_LEN} characters A-Z and 0-9"));
            None
        }
        None => None,
    };
    let created_at = c
        .instant("created_at", issuer.offset, DayEnd::Start)
        .value();
    if created_at.is_some_and(|t| t > now) {
        c.error("created_at", "must not be in the future");
    }
    let mut f = Fields::new(body);
    let code = read_code(&mut f);
    // The validity pair counts from the voucher's creation, as on create.
    let voucher = read_voucher(&mut f, issuer, created_at.unwrap_or(now));
    let mut errors = match f.finish() {
        Err(ApiError::Invalid(errors)) => errors,
        _ => Vec::new(),
    };
    for e in &mut errors {
        if let Some(part) = e.field.strip_prefix("discount.") {
            e.field = format!("discount_{part}");
        } else if e.field == "discount" {
            e.field = "discount_type".into();
        }
    }
    let code_generated = code.is_none();
    let voucher = voucher.map(|mut v| {
        read_carried(&mut c, &mut v, issuer, now);
        v.id = id.unwrap_or_else(new_id);
        v.code = code.unwrap_or_else(|| {
            CodeShape::new(None, None)
                .map(|s| s.generate(&mut rand::thread_rng()))
                .unwrap_or(v.code.clone())
        });
        v.created_at = created_at.unwrap_or(now);
        v.updated_at = now;
        v
    });
    errors.splice(0..0, c.errors);
    errors.splice(0..0, refused);
    match voucher {
        Some(v) if errors.is_empty() => (Ok(v), code_generated),
        _ => (Err(errors), code_generated),
    }
}

/// Stores the PIN hashes an import carried, on the vouchers just inserted with `conn`.
pub fn set_pins(conn: &Db, pin_hashes: &[(String, String)]) -> Result<(), ApiError> {
    for (id, hash) in pin_hashes {
        pins::set_voucher_pin(conn, id, Some(hash))?;
    }
    Ok(())
}

fn is_id(text: &str) -> bool {
    text.len() == ID_LEN && text.bytes().all(|b| ID_ALPHABET.contains(&b))
}

/// The balance of a value voucher, the uses of a discount voucher: what makes an imported
/// voucher as spent as it was where it came from.
fn read_carried(c: &mut Fields, v: &mut Voucher, issuer: &Issuer, now: i64) {
    let remaining = c.amount("remaining_amount", v.currency, true).value();
    let uses = c.integer("uses", 0, 1_000_000).value().unwrap_or(0);
    let used_at = c.instant("used_at", issuer.offset, DayEnd::Start).value();
    match (v.amount, remaining) {
        (None, Some(_)) => c.error("remaining_amount", "only value vouchers have a balance"),
        (Some(amount), Some(r)) if r > amount => {
            c.error("remaining_amount", "must not exceed amount")
        }
        (Some(_), Some(r)) => v.remaining = Some(r),
        _ => {}
    }
    match v.max_uses {
        None if uses > 0 => c.error("uses", "only discount vouchers have uses"),
        None if used_at.is_some() => c.error("used_at", "only discount vouchers are used"),
        Some(max) if uses > max => c.error("uses", "must not exceed max_uses"),
        Some(max) if uses < max && used_at.is_some() => {
            c.error("used_at", "is set only once all max_uses uses are spent")
        }
        Some(max) => {
            v.uses = uses;
            // Spent where it came from: when is kept if known, else it is now.
            v.used_at = used_at.or((uses >= max).then_some(now));
        }
        None => {}
    }
}

pub fn import_vouchers(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_WRITE)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        if ctx.req.media_type() != "text/csv" {
            return Err(ApiError::UnsupportedMediaType("text/csv"));
        }
        if ctx.req.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::Malformed(
                "The body is empty; a CSV with a header row is expected.".into(),
            ));
        }
        let now = clock::now();
        // Read and checked here, on the worker: the writer thread only inserts.
        let mut reader = ImportReader::new(ctx.req.body.as_slice(), Issuer::of(ctx, &token), now)?;
        let rows: Vec<ImportRow> = reader.by_ref().collect();
        if let Some(failure) = reader.failure {
            return Err(failure);
        }
        let pin_hashes = reader.pins;
        ctx.app.store.write(move |conn| {
            finish_write(
                conn,
                key.as_ref(),
                |c| {
                    let mut made = Vec::new();
                    bulk::import(c, rows, now, |v| {
                        made.push(json!({"id": v.id, "code": v.code.as_str()}))
                    })?;
                    set_pins(c, &pin_hashes)?;
                    Ok(made)
                },
                |made| Reply::json(201, &json!({"imported": made.len(), "data": made})),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::export::{csv_writer, write_voucher};
    use super::*;
    use crate::domain::money::Currency;
    use time::UtcOffset;

    const NOW: i64 = 1_750_000_000;

    fn issuer() -> Issuer {
        Issuer {
            client_id: "CLIENT".into(),
            group_id: "GROUP".into(),
            offset: UtcOffset::UTC,
            currency: Currency::parse("EUR").expect("EUR"),
        }
    }

    /// Reads a whole CSV text into its rows' outcomes (and the syntax failure, if any).
    fn import(text: &str) -> Result<Vec<ImportRow>, ApiError> {
        let mut reader = ImportReader::new(text.as_bytes(), issuer(), NOW)?;
        let rows: Vec<ImportRow> = reader.by_ref().collect();
        match reader.failure {
            Some(failure) => Err(failure),
            None => Ok(rows),
        }
    }

    fn one(text: &str) -> Result<Voucher, Vec<FieldError>> {
        let mut rows = import(text).expect("readable CSV");
        assert_eq!(rows.len(), 1, "one row in {text:?}");
        rows.remove(0).voucher
    }

    fn fields_of(result: Result<Voucher, Vec<FieldError>>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    fn export(vouchers: &[Voucher]) -> String {
        let mut w = csv_writer(Vec::new());
        w.write_record(COLUMNS).expect("header");
        for v in vouchers {
            write_voucher(&mut w, v, None, UtcOffset::UTC).expect("row");
        }
        String::from_utf8(w.into_inner().expect("flush")).expect("UTF-8")
    }

    #[test]
    fn a_value_voucher_keeps_its_id_code_and_balance() {
        let v = one(
            "id,code,amount,remaining_amount,currency\nABCDEFGH12345678,ab-cd 9,10.50,4.25,usd\n",
        )
        .expect("valid row");
        assert_eq!(
            (v.id.as_str(), v.code.as_str()),
            ("ABCDEFGH12345678", "ABCD9")
        );
        assert_eq!((v.amount, v.remaining), (Some(1050), Some(425)));
        assert_eq!(v.currency.as_str(), "USD");
        assert_eq!(
            (v.client_id.as_str(), v.group_id.as_str()),
            ("CLIENT", "GROUP")
        );
        assert_eq!((v.created_at, v.updated_at), (NOW, NOW));
    }

    #[test]
    fn empty_cells_are_left_out_and_a_missing_code_is_generated() {
        let rows = import("code,amount,label,status\n,5,,\n").expect("readable");
        assert!(rows[0].code_generated);
        let v = rows[0].voucher.as_ref().expect("valid row");
        assert_eq!(v.code.as_str().len(), 8);
        assert_eq!((v.label.clone(), v.remaining), (None, Some(500)));
        assert_eq!(v.id.len(), ID_LEN);
    }

    #[test]
    fn export_then_import_reproduces_every_field_it_carries() {
        let text = "id,code,amount,remaining_amount,label,note,sku,batch,valid_from,valid_until,\
            validity_value,validity_interval,status,type,taxable,tax_rate,order_number,customer_id,\
            product_id,store_id,purchase_id,reward_id,data,created_at\n\
            AAAAAAAAAAAAAAA1,CODE1,20.00,0.00,\"Gift, \"\"big\"\"\nsecond line\",n,s,b,\
            2025-01-01T00:00:00+00:00,2026-01-01,2,years,inactive,print,true,7.5,O-1,cu,pr,st,pu,re,\
            \"{\"\"a\"\": [1, 2]}\",2025-02-03T04:05:06+00:00\n";
        let discount = "id,code,discount_type,discount_value,max_uses,uses,used_at\n\
            AAAAAAAAAAAAAAA3,CODE3,percentage,12.5,3,3,2025-03-01T10:00:00+00:00\n";
        let mut first = vec![one(text).expect("valid value row")];
        first.push(one(discount).expect("valid discount row"));
        let again: Vec<Voucher> = import(&export(&first))
            .expect("the export reads back")
            .into_iter()
            .map(|r| r.voucher.expect("exported rows are valid"))
            .collect();
        assert_eq!(again.len(), first.len());
        for (a, b) in first.iter().zip(&again) {
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        let gift = &again[0];
        assert_eq!(gift.label.as_deref(), Some("Gift, \"big\"\nsecond line"));
        assert_eq!((gift.amount, gift.remaining), (Some(2000), Some(0)));
        assert_eq!(gift.tax_rate, Some(750));
        assert_eq!(gift.created_at, 1_738_555_506);
        assert_eq!(gift.data.as_deref(), Some("{\"a\": [1, 2]}"));
        let used = &again[1];
        assert_eq!((used.uses, used.max_uses), (3, Some(3)));
        assert_eq!(used.used_at, Some(1_740_823_200));
    }

    #[test]
    fn cells_that_start_like_formulas_survive_export_then_import() {
        let text = "id,code,amount,label,note,sku,order_number,customer_id,store_id,data\n\
            AAAAAAAAAAAAAAA7,CODE7,5,\"=HYPERLINK(\"\"http://x\"\")\",@cmd,+1,-2,\"\tt\",\"\rr\",'q\n";
        let v = one(text).expect("valid row");
        assert_eq!(v.label.as_deref(), Some("=HYPERLINK(\"http://x\")"));
        assert_eq!(v.note.as_deref(), Some("@cmd"));
        assert_eq!(v.sku.as_deref(), Some("+1"));
        assert_eq!(v.order_number.as_deref(), Some("-2"));
        assert_eq!(v.restrictions.customer_id.as_deref(), Some("\tt"));
        assert_eq!(v.restrictions.store_id.as_deref(), Some("\rr"));
        // A lone leading `'` is the escape: `'q` reads as `q`.
        assert_eq!(v.data.as_deref(), Some("q"));
        let mut quoted = v.clone();
        quoted.data = Some("'q".into());
        let exported = export(&[quoted.clone()]);
        for cell in [
            "'=HYPERLINK",
            ",'@cmd,",
            ",'+1,",
            ",'-2,",
            ",'\tt,",
            "\"'\rr\"",
            ",''q,",
        ] {
            assert!(exported.contains(cell), "{cell:?} in {exported}");
        }
        let again = one(&exported).expect("the export reads back");
        assert_eq!(format!("{again:?}"), format!("{quoted:?}"));
    }

    #[test]
    fn bad_cells_are_named_by_column() {
        assert_eq!(fields_of(one("amount\nten\n")), ["amount"]);
        assert_eq!(fields_of(one("id,amount\nshort,1\n")), ["id"]);
        assert_eq!(fields_of(one("id,amount\nabcdefgh12345678,1\n")), ["id"]);
        assert_eq!(
            fields_of(one("discount_type,discount_value\nmoney,-1\n")),
            ["discount_value"]
        );
        assert_eq!(fields_of(one("discount_type\nsome\n")), ["discount_type"]);
        assert_eq!(
            fields_of(one("amount,remaining_amount\n5,6\n")),
            ["remaining_amount"]
        );
        assert_eq!(fields_of(one("amount,uses\n5,1\n")), ["uses"]);
        assert_eq!(
            fields_of(one("amount,used_at\n5,2025-01-01\n")),
            ["used_at"]
        );
        assert_eq!(
            fields_of(one(
                "discount_type,discount_value,max_uses,uses\nmoney,1,2,3\n"
            )),
            ["uses"]
        );
        assert_eq!(
            fields_of(one(
                "discount_type,discount_value,remaining_amount\nmoney,1,1\n"
            )),
            ["remaining_amount"]
        );
        assert_eq!(fields_of(one("amount,taxable\n5,yes\n")), ["taxable"]);
        assert_eq!(fields_of(one("amount,max_uses\n5,2\n")), ["max_uses"]);
        assert_eq!(
            fields_of(one("amount,created_at\n5,2999-01-01\n")),
            ["created_at"]
        );
        assert_eq!(fields_of(one("code,amount\nno!,5\n")), ["code"]);
        assert_eq!(
            fields_of(one("amount,customer_id,batch\n5,a\0b,\0\n")),
            ["customer_id", "batch"]
        );
        assert_eq!(
            fields_of(one("amount,discount_type,discount_value\n5,money,1\n")),
            ["amount"]
        );
    }

    #[test]
    fn the_header_must_name_export_columns_once() {
        let fields = |text: &str| match import(text) {
            Err(ApiError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!(
                "expected a header error for {text:?}, got {:?}",
                other.map(|r| r.len())
            ),
        };
        let unknown: Vec<String> = fields("amount,colour\n5,red\n");
        assert_eq!(unknown, ["colour"]);
        let twice: Vec<String> = fields("amount,amount\n5,5\n");
        assert_eq!(twice, ["amount"]);
        let unnamed: Vec<String> = fields("amount,\n5,5\n");
        assert_eq!(unnamed, ["column 2"]);
        assert!(matches!(import(""), Err(ApiError::Malformed(_))));
        assert_eq!(import("amount\n").map(|rows| rows.len()).ok(), Some(0));
    }

    #[test]
    fn rows_that_are_not_csv_end_the_import_naming_the_row() {
        let detail = |text: &[u8]| {
            let mut reader = ImportReader::new(text, issuer(), NOW).expect("header");
            let read = reader.by_ref().count();
            (read, reader.failure.map(|f| f.detail()))
        };
        assert_eq!(
            detail(b"amount,label\n1,a\n2,b\n3\n"),
            (2, Some("Row 3 has 1 cells; the header has 2.".into()))
        );
        assert_eq!(
            detail(b"amount,label\n1,a\n2,\xff\n"),
            (1, Some("Row 2 is not valid UTF-8.".into()))
        );
    }

    #[test]
    fn rows_are_numbered_from_the_first_after_the_header() {
        let rows = import("amount\n1\nbad\n\"3\"\n").expect("readable");
        let numbers: Vec<(u64, bool)> = rows.iter().map(|r| (r.row, r.voucher.is_ok())).collect();
        assert_eq!(numbers, [(1, true), (2, false), (3, true)]);
    }
}
