//! CSV as a spreadsheet in Brazil opens it: UTF-8 with a byte-order mark, `;` between
//! cells, `\r\n` between rows, decimal comma, dates as `dd/mm/aaaa hh:mm` in São Paulo
//! time. A text cell that a spreadsheet would read as a formula (it starts with `=`, `+`,
//! `-`, `@`, a tab or a carriage return) gets a leading `'`, so nothing a buyer typed runs.

use chrono::{Datelike, FixedOffset, TimeZone, Timelike};

/// What starts the file: the UTF-8 byte-order mark.
pub const BOM: &str = "\u{feff}";

/// Characters that make a spreadsheet read a cell as a formula when they come first.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One cell of a row.
pub enum Cell<'a> {
    /// Text from people or checkouts: guarded against formulas, quoted when needed.
    Text(&'a str),
    /// A number or date this module wrote itself.
    Plain(String),
}

/// Appends one row (cells joined by `;`, ended by `\r\n`) to `out`.
pub fn row(out: &mut String, cells: &[Cell<'_>]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        match cell {
            Cell::Text(text) => text_cell(out, text),
            Cell::Plain(text) => out.push_str(text),
        }
    }
    out.push_str("\r\n");
}

fn text_cell(out: &mut String, text: &str) {
    let guarded = text.starts_with(FORMULA_STARTS);
    let quoted = guarded || text.contains([';', '"', '\n', '\r', ',']);
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

/// Cents as a decimal with a comma and no thousands separator (`1234,56`).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{},{:02}", abs / 100, abs % 100)
}

/// Milliseconds since the epoch as `dd/mm/aaaa hh:mm` in São Paulo (UTC−3, no daylight
/// saving since 2019).
pub fn date(ms: i64) -> String {
    let sao_paulo = FixedOffset::west_opt(3 * 3600).expect("a valid offset");
    match sao_paulo.timestamp_millis_opt(ms).single() {
        // The fields written directly: an export formats two dates per row, and a
        // format string is parsed on every call.
        Some(at) if (0..=9999).contains(&at.year()) => format!(
            "{:02}/{:02}/{:04} {:02}:{:02}",
            at.day(),
            at.month(),
            at.year(),
            at.hour(),
            at.minute()
        ),
        Some(at) => at.format("%d/%m/%Y %H:%M").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads one row back as a spreadsheet would: quoted cells, doubled quotes.
    fn parse(line: &str) -> Vec<String> {
        let mut cells = vec![String::new()];
        let mut chars = line.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    cells.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (';', false) => cells.push(String::new()),
                (c, _) => cells.last_mut().unwrap().push(c),
            }
        }
        cells
    }

    #[test]
    fn formulas_are_defused_and_numbers_use_a_comma() {
        let mut out = String::new();
        row(
            &mut out,
            &[
                Cell::Text("=HYPERLINK(\"x\")"),
                Cell::Text("+55 11"),
                Cell::Text("-1"),
                Cell::Text("@SUM(A1)"),
                Cell::Text("\tx"),
                Cell::Text("Ana; \"Souza\""),
                Cell::Plain(money(123_456)),
            ],
        );
        assert_eq!(
            out,
            "\"'=HYPERLINK(\"\"x\"\")\";\"'+55 11\";\"'-1\";\"'@SUM(A1)\";\"'\tx\";\"Ana; \"\"Souza\"\"\";1234,56\r\n"
        );
        assert_eq!(money(5), "0,05");
        assert_eq!(money(-250), "-2,50");
    }

    #[test]
    fn dates_are_in_sao_paulo_time() {
        // 2026-01-15 12:30 UTC is 09:30 in São Paulo.
        assert_eq!(date(1_768_480_200_000), "15/01/2026 09:30");
    }

    proptest! {
        /// The fields written directly read as the format string writes them.
        #[test]
        fn dates_read_as_the_format_writes_them(ms in -70_000_000_000_000i64..250_000_000_000_000) {
            let sao_paulo = FixedOffset::west_opt(3 * 3600).unwrap();
            let expected = sao_paulo
                .timestamp_millis_opt(ms)
                .single()
                .map(|at| at.format("%d/%m/%Y %H:%M").to_string())
                .unwrap_or_default();
            prop_assert_eq!(date(ms), expected);
        }

        /// Whatever the text, the row reads back as the same cells, and no cell read back
        /// starts a formula.
        #[test]
        fn any_text_round_trips_without_formulas(cells in proptest::collection::vec(".{0,12}", 1..5)) {
            let mut out = String::new();
            let row_cells: Vec<Cell<'_>> = cells.iter().map(|c| Cell::Text(c)).collect();
            row(&mut out, &row_cells);
            let line = out.strip_suffix("\r\n").unwrap();
            let back = parse(line);
            prop_assert_eq!(back.len(), cells.len());
            for (read, written) in back.iter().zip(&cells) {
                prop_assert!(!read.starts_with(FORMULA_STARTS));
                let expected = if written.starts_with(FORMULA_STARTS) { format!("'{written}") } else { written.clone() };
                prop_assert_eq!(read, &expected);
            }
        }
    }
}
