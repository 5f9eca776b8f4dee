//! What the client commands print for people: aligned tables for lists, `key: value` blocks
//! for single objects. Scripts use `--json`, which prints the server's answer unchanged.
//!
//! Values come from a server, so control characters (an escape sequence in a label, say) are
//! printed escaped: what a terminal shows is what the server holds, nothing more.

use std::fmt;

/// Columns padded to their widest cell; the last column is not padded.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new<const N: usize>(header: [&str; N]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are empty, extra cells ignored).
    pub(crate) fn row<I: IntoIterator<Item = String>>(&mut self, cells: I) {
        let mut row: Vec<String> = cells
            .into_iter()
            .map(|c| printable(&c))
            .take(self.header.len())
            .collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}  "));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `name: value` lines with the values aligned.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// Appends a field.
    pub(crate) fn add(mut self, name: &str, value: impl Into<String>) -> Fields {
        self.0.push((format!("{name}:"), printable(&value.into())));
        self
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.0.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, value) in &self.0 {
            writeln!(f, "{name:<width$} {value}")?;
        }
        Ok(())
    }
}

/// A JSON value as one cell: strings bare, `null` as `-`, anything else as compact JSON.
pub(crate) fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `s` with control characters escaped, so that a value cannot drive the terminal.
fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tables_align_columns_by_their_widest_cell() {
        let mut t = Table::new(["NAME", "OPERATIONS", "SOURCE"]);
        t.row([
            "payments".to_owned(),
            "sign:transaction".into(),
            "file".into(),
        ]);
        t.row(["ci".to_owned(), "admin".into()]);
        assert_eq!(
            t.to_string(),
            "NAME      OPERATIONS        SOURCE\n\
             payments  sign:transaction  file\n\
             ci        admin\n"
        );
    }

    #[test]
    fn fields_align_values_and_escape_control_characters() {
        let f = Fields::default()
            .add("address", "0xabc")
            .add("label", "evil\u{1b}[2Jlabel");
        assert_eq!(
            f.to_string(),
            "address: 0xabc\nlabel:   evil\\u{1b}[2Jlabel\n"
        );
        assert_eq!(text(&serde_json::Value::Null), "-");
        assert_eq!(text(&serde_json::json!({"a": 1})), "{\"a\":1}");
    }
}
