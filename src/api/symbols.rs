//! A voucher's code as a picture for print: `GET /v1/vouchers/{id}/barcode.svg` (Code 128,
//! what the 1D scanners at most tills read) and `GET /v1/vouchers/{id}/qr.svg` (a QR code, for
//! phones and 2D scanners). Both encode exactly the code, nothing else, so a scanner "types" it
//! into the till or the back-room page's code field.
//!
//! Rendered server-side from two small, long-lived crates (`barcoders`, `qrcode`) without
//! their image back-ends: the page only has to show the SVG, and the encoding is not ours to
//! get wrong. Read-only and under the same scope and tenancy as the voucher itself.

use super::{tenant_of, Ctx};
use crate::auth::scope::VOUCHERS_READ;
use crate::error::ApiError;
use crate::store::vouchers;
use crate::web::response::Reply;
use barcoders::generators::svg::SVG;
use barcoders::sym::code128::Code128;
use qrcode::render::svg;
use qrcode::QrCode;

/// Code 128 wants at least ten module widths of white on either side.
const QUIET_MODULES: usize = 10;
/// Bar height in module widths: a code of 8 characters is 143 modules wide with its quiet
/// zones, so the symbol is about 3.5 : 1, tall enough for a hand scanner's line.
const BAR_HEIGHT: u32 = 40;
/// Code 128's character set B (upper case, digits) as `barcoders` spells it.
const SET_B: char = '\u{0181}';

/// The SVG of `code` as a Code 128 barcode (set B), quiet zones included.
pub fn code128_svg(code: &str) -> Result<String, ApiError> {
    let symbol =
        Code128::new(format!("{SET_B}{code}")).map_err(|e| ApiError::internal("code 128", e))?;
    let mut modules = vec![0u8; QUIET_MODULES];
    modules.extend(symbol.encode());
    modules.extend(std::iter::repeat_n(0u8, QUIET_MODULES));
    let svg = SVG::new(BAR_HEIGHT)
        .xmlns("http://www.w3.org/2000/svg".into())
        .generate(&modules)
        .map_err(|e| ApiError::internal("code 128 svg", e))?;
    // Bars are drawn one module at a time: without crisp edges a scaled bar shows seams.
    Ok(svg.replacen("<svg ", "<svg shape-rendering=\"crispEdges\" ", 1))
}

/// The SVG of `code` as a QR code (error correction M, the standard four-module quiet zone).
pub fn qr_svg(code: &str) -> Result<String, ApiError> {
    let qr = QrCode::new(code.as_bytes()).map_err(|e| ApiError::internal("qr code", e))?;
    Ok(qr
        .render::<svg::Color>()
        .quiet_zone(true)
        .module_dimensions(1, 1)
        .build())
}

pub fn barcode(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    symbol_reply(ctx, id, code128_svg)
}

pub fn qr(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    symbol_reply(ctx, id, qr_svg)
}

fn symbol_reply(
    ctx: &mut Ctx,
    id: &str,
    render: fn(&str) -> Result<String, ApiError>,
) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    let voucher = vouchers::get(ctx.conn, id, &tenant_of(&token))?;
    let svg = render(voucher.code.as_str())?;
    // A code never changes, but the voucher may be deleted or the token revoked: keep it
    // private and short-lived rather than cached for long.
    Ok(Reply::bytes(200, "image/svg+xml", svg.into_bytes())
        .with_header("Cache-Control", "private, max-age=300")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The modules (1 = bar) of a barcode SVG: one `<rect>` of width 1 per bar module, on a
    /// white background rect as wide as the whole symbol.
    fn modules(svg: &str) -> Vec<u8> {
        let width: usize = svg
            .split("viewBox=\"0 0 ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|w| w.parse().ok())
            .expect("a viewBox");
        let mut out = vec![0u8; width];
        for rect in svg.split("<rect ").skip(2) {
            let x: usize = rect
                .split("x=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|x| x.parse().ok())
                .expect("x");
            assert!(rect.contains("width=\"1\""), "one module per rect: {rect}");
            out[x] = 1;
        }
        out
    }

    fn bits(pattern: &str) -> Vec<u8> {
        pattern.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn code128_has_quiet_zones_start_b_and_stop() {
        for code in ["WQ4MM3", "ABCD", "23456789", "Z9Z9Z9Z9"] {
            let svg = code128_svg(code).expect("renders");
            assert!(svg.starts_with("<svg shape-rendering=\"crispEdges\" "));
            assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
            let m = modules(&svg);
            // quiet + start B + one symbol per character + check symbol + stop + quiet.
            assert_eq!(m.len(), 10 + 11 + 11 * code.len() + 11 + 13 + 10, "{code}");
            assert!(m[..10].iter().all(|&b| b == 0));
            assert!(m[m.len() - 10..].iter().all(|&b| b == 0));
            assert_eq!(m[10..21], bits("11010010000")[..], "start B");
            assert_eq!(m[m.len() - 23..m.len() - 10], bits("1100011101011")[..]);
        }
    }

    #[test]
    fn code128_encodes_the_characters_of_set_b() {
        // Set B values: '0' is 16, 'A' is 33; their patterns from the Code 128 table.
        let m = modules(&code128_svg("A0A0").expect("renders"));
        let a = bits("10100011000");
        let zero = bits("10011101100");
        for (i, want) in [&a, &zero, &a, &zero].into_iter().enumerate() {
            let at = 21 + 11 * i;
            assert_eq!(m[at..at + 11], want[..], "character {i}");
        }
        // Check symbol: (104 + 33·1 + 16·2 + 33·3 + 16·4) mod 103 = 332 mod 103 = 23 ('7').
        assert_eq!(m[65..76], bits("11101101110")[..]);
    }

    #[test]
    fn qr_is_a_square_with_its_quiet_zone() {
        let svg = qr_svg("WQ4MM3").expect("renders");
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        // Version 1 (21 modules) plus four quiet modules on each side.
        assert!(svg.contains("viewBox=\"0 0 29 29\""), "{svg}");
    }
}
