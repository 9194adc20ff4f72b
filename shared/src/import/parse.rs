//! What a list file is, and its rows. CSV through `csv-core`, the push parser under the `csv`
//! crate: bytes go in as they arrive from the network and it reports how many it consumed, so
//! the byte offset after every row is exact (a resumed import reads from there with a ranged
//! GET), and the row buffer is ours to bound (an unterminated quote cannot make the function
//! buffer the rest of a large file). Quoted fields with separators, quotes and line breaks,
//! CRLF and LF line ends are RFC 4180 as Excel and Google Sheets write them. JSON lines: one
//! object per line.

use serde::{Deserialize, Serialize};

use super::FileError;

/// The longest row (and header) kept; a longer row is reported (`row_too_large`) and skipped.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The most columns a row may have; more is reported like an oversized row.
pub const MAX_COLUMNS: usize = 512;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How the rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// CSV with this separator (`,`, `;` or tab), a header row first.
    Csv { delimiter: char },
    /// One JSON object per line (`.jsonl`, `.ndjson`); no header.
    JsonLines,
}

/// Whether a key names a JSON lines file (by its extension).
pub fn is_json_lines(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with(".jsonl") || k.ends_with(".ndjson")
}

/// Reads the start of a file (at least its first line, when it has one) and tells its shape
/// and where the rows start (after a UTF-8 byte order mark). Refuses what is not UTF-8 text
/// (UTF-16, workbooks, binary data) as a whole.
pub fn sniff(start: &[u8], json_lines: bool) -> Result<(Shape, u64), FileError> {
    if start.starts_with(b"\xFF\xFE") || start.starts_with(b"\xFE\xFF") {
        return Err(FileError::Encoding("UTF-16"));
    }
    if start.starts_with(b"PK\x03\x04") {
        return Err(FileError::NotCsv("a zip archive (an Excel workbook?)"));
    }
    if start.starts_with(b"\xD0\xCF\x11\xE0") {
        return Err(FileError::NotCsv("an Excel 97-2003 workbook"));
    }
    if start.starts_with(b"%PDF") {
        return Err(FileError::NotCsv("a PDF document"));
    }
    let bom = if start.starts_with(UTF8_BOM) { 3 } else { 0 };
    let body = &start[bom..];
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or(body);
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(FileError::Empty);
    }
    if first_line.contains(&0) {
        return Err(FileError::NotCsv("binary data"));
    }
    if json_lines {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(FileError::NotCsv("JSON lines whose first row is no object"));
        }
        return Ok((Shape::JsonLines, bom as u64));
    }
    if std::str::from_utf8(first_line).is_err() {
        return Err(FileError::Encoding("not UTF-8 (Windows-1252 or Latin-1?)"));
    }
    Ok((
        Shape::Csv {
            delimiter: delimiter_of(first_line),
        },
        bom as u64,
    ))
}

/// The separator of a header line: the most frequent of `,`, `;` and tab outside quotes
/// (Excel writes `;` where the decimal separator is a comma); `,` when none appears.
fn delimiter_of(line: &[u8]) -> char {
    let (mut quoted, mut counts) = (false, [0usize; 3]);
    for b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|i| (counts[*i], 3 - i)).unwrap_or(0);
    if counts[best] == 0 {
        ','
    } else {
        [',', ';', '\t'][best]
    }
}

/// One row as read, before any meaning is given to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawRow {
    /// CSV cells, in column order.
    Cells(Vec<String>),
    /// A JSON object's members, as text.
    Named(Vec<(String, String)>),
    /// A row that cannot be read: its code and the column (index for CSV, name for JSON).
    Problem {
        code: &'static str,
        field: Option<String>,
        column: Option<usize>,
    },
}

/// A row and the byte offset just after it (where the next row starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub end: u64,
    pub row: RawRow,
}

/// A push parser: [`Parser::push`] bytes as they arrive, [`Parser::finish`] at the end of the
/// stream, and take rows with [`Parser::next_row`] until it answers `None` (more input needed, or
/// the end). Blank lines are skipped.
pub struct Parser {
    shape: Shape,
    csv: csv_core::Reader,
    pending: Vec<u8>,
    pos: usize,
    /// Absolute offset of `pending[pos]` in the file.
    offset: u64,
    eof: bool,
    done: bool,
    out: Vec<u8>,
    outlen: usize,
    ends: Vec<usize>,
    endlen: usize,
    /// The current row passed a bound: its data is dropped until it ends.
    oversized: bool,
}

impl Parser {
    /// A parser reading `shape` from absolute byte `offset` (0 after the BOM at a file's
    /// start, or a checkpoint's offset, always at a row boundary).
    pub fn new(shape: Shape, offset: u64) -> Parser {
        let delimiter = match shape {
            Shape::Csv { delimiter } => delimiter as u8,
            Shape::JsonLines => b',',
        };
        Parser {
            shape,
            csv: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            pending: Vec::new(),
            pos: 0,
            offset,
            eof: false,
            done: false,
            out: vec![0; 4096],
            outlen: 0,
            ends: vec![0; 64],
            endlen: 0,
            oversized: false,
        }
    }

    /// Adds the next bytes of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        self.pending.extend_from_slice(chunk);
    }

    /// The stream ended: the last row may lack its line end.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// The absolute offset up to which input was consumed (a row boundary right after a row
    /// was returned).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next complete row, or `None` when more input is needed or the stream is done.
    pub fn next_row(&mut self) -> Option<Record> {
        match self.shape {
            Shape::Csv { .. } => self.next_csv(),
            Shape::JsonLines => self.next_line(),
        }
    }

    fn next_csv(&mut self) -> Option<Record> {
        use csv_core::ReadRecordResult as R;
        loop {
            if self.done {
                return None;
            }
            let input = &self.pending[self.pos..];
            if input.is_empty() && !self.eof {
                return None;
            }
            let (res, nin, nout, nend) = self.csv.read_record(
                input,
                &mut self.out[self.outlen..],
                &mut self.ends[self.endlen..],
            );
            self.pos += nin;
            self.offset += nin as u64;
            self.outlen += nout;
            self.endlen += nend;
            match res {
                R::InputEmpty => {
                    if self.eof && nin == 0 {
                        self.done = true;
                    }
                }
                R::OutputFull => {
                    if self.out.len() >= MAX_RECORD_BYTES {
                        self.oversized = true;
                        self.outlen = 0;
                    } else {
                        self.out.resize(self.out.len() * 2, 0);
                    }
                }
                R::OutputEndsFull => {
                    if self.ends.len() >= MAX_COLUMNS {
                        self.oversized = true;
                        self.endlen = 0;
                    } else {
                        self.ends.resize(self.ends.len() * 2, 0);
                    }
                }
                R::Record => {
                    let row = self.take_cells();
                    if let Some(row) = row {
                        return Some(Record {
                            end: self.offset,
                            row,
                        });
                    }
                }
                R::End => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    /// The row just completed (None for a blank line), and the buffers reset for the next.
    fn take_cells(&mut self) -> Option<RawRow> {
        let (outlen, endlen, oversized) = (self.outlen, self.endlen, self.oversized);
        self.outlen = 0;
        self.endlen = 0;
        self.oversized = false;
        if oversized {
            return Some(RawRow::Problem {
                code: "row_too_large",
                field: None,
                column: None,
            });
        }
        let data = &self.out[..outlen];
        let ends = &self.ends[..endlen];
        if ends.len() <= 1 && data.iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let mut cells = Vec::with_capacity(ends.len());
        let mut start = 0;
        for (i, end) in ends.iter().enumerate() {
            match std::str::from_utf8(&data[start..*end]) {
                Ok(v) => cells.push(v.to_string()),
                Err(_) => {
                    return Some(RawRow::Problem {
                        code: "invalid_encoding",
                        field: None,
                        column: Some(i),
                    })
                }
            }
            start = *end;
        }
        Some(RawRow::Cells(cells))
    }

    fn next_line(&mut self) -> Option<Record> {
        loop {
            if self.done {
                return None;
            }
            let rest = &self.pending[self.pos..];
            let (line_len, consumed) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (i, i + 1),
                None if self.eof => {
                    if rest.is_empty() {
                        self.done = true;
                        return None;
                    }
                    (rest.len(), rest.len())
                }
                None => {
                    if rest.len() > MAX_RECORD_BYTES {
                        // Drop what we have of an oversized line; its end is still to come.
                        self.oversized = true;
                        self.offset += rest.len() as u64;
                        self.pos = self.pending.len();
                    }
                    return None;
                }
            };
            let line = &rest[..line_len];
            let oversized = std::mem::take(&mut self.oversized) || line.len() > MAX_RECORD_BYTES;
            let row = if oversized {
                Some(RawRow::Problem {
                    code: "row_too_large",
                    field: None,
                    column: None,
                })
            } else {
                json_row(line)
            };
            self.pos += consumed;
            self.offset += consumed as u64;
            if let Some(row) = row {
                return Some(Record {
                    end: self.offset,
                    row,
                });
            }
        }
    }
}

/// One JSON lines row: an object whose values are text, numbers or booleans (null: absent).
fn json_row(line: &[u8]) -> Option<RawRow> {
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let problem = |code, field: Option<String>| RawRow::Problem {
        code,
        field,
        column: None,
    };
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(_) => return Some(problem("invalid_json", None)),
    };
    let serde_json::Value::Object(map) = value else {
        return Some(problem("not_an_object", None));
    };
    let mut fields = Vec::with_capacity(map.len());
    for (name, v) in map {
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Some(problem("invalid_value", Some(name))),
        };
        fields.push((name, text));
    }
    if fields.len() > MAX_COLUMNS {
        return Some(problem("row_too_large", None));
    }
    Some(RawRow::Named(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of `data` fed in chunks of `chunk` bytes.
    fn rows(shape: Shape, data: &[u8], chunk: usize) -> Vec<Record> {
        let mut p = Parser::new(shape, 0);
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            p.push(c);
            while let Some(r) = p.next_row() {
                out.push(r);
            }
        }
        p.finish();
        while let Some(r) = p.next_row() {
            out.push(r);
        }
        out
    }

    fn cells(r: &Record) -> Vec<&str> {
        match &r.row {
            RawRow::Cells(c) => c.iter().map(String::as_str).collect(),
            other => panic!("{other:?}"),
        }
    }

    const SEMI: Shape = Shape::Csv { delimiter: ';' };

    #[test]
    fn sniffs_bom_separator_and_refusals() {
        let (shape, start) = sniff(b"\xEF\xBB\xBFE-mail;Vorname;Firma\r\n", false).unwrap();
        assert_eq!((shape, start), (SEMI, 3));
        assert_eq!(
            sniff(b"email,\"a;b\";c\n", false).unwrap().0,
            Shape::Csv { delimiter: ',' }
        );
        assert_eq!(
            sniff(b"email\n", false).unwrap().0,
            Shape::Csv { delimiter: ',' }
        );
        assert_eq!(
            sniff(b"email\tname\n", false).unwrap().0,
            Shape::Csv { delimiter: '\t' }
        );
        assert_eq!(
            sniff(b"\xFF\xFEe\0m\0", false).unwrap_err().code(),
            "unsupported_encoding"
        );
        assert_eq!(
            sniff(b"PK\x03\x04\x14\0", false).unwrap_err().code(),
            "not_csv"
        );
        assert_eq!(
            sniff(b"Stra\xDFe;email\n", false).unwrap_err().code(),
            "unsupported_encoding"
        );
        assert_eq!(sniff(b"", false).unwrap_err().code(), "no_header");
        assert_eq!(sniff(b" \r\n", false).unwrap_err().code(), "no_header");
        assert_eq!(sniff(b"a\0b\n", false).unwrap_err().code(), "not_csv");
        assert_eq!(sniff(b"{\"email\":1}\n", true).unwrap().0, Shape::JsonLines);
        assert_eq!(sniff(b"email\n", true).unwrap_err().code(), "not_csv");
    }

    #[test]
    fn quoted_newlines_crlf_blank_lines_and_offsets_in_any_chunking() {
        let data = b"email;note\r\na@x.io;\"two\r\nlines; and \"\"quotes\"\"\"\r\n\r\nb@x.io;plain\r\nc@x.io;last";
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let r = rows(SEMI, data, chunk);
            assert_eq!(r.len(), 4, "chunk {chunk}");
            assert_eq!(cells(&r[0]), ["email", "note"]);
            assert_eq!(cells(&r[1]), ["a@x.io", "two\r\nlines; and \"quotes\""]);
            assert_eq!(cells(&r[2]), ["b@x.io", "plain"]);
            assert_eq!(cells(&r[3]), ["c@x.io", "last"]);
            assert_eq!(r[3].end, data.len() as u64);
            // Every offset is a row boundary: parsing from it gives the rows after it.
            let from = r[1].end as usize;
            let mut p = Parser::new(SEMI, from as u64);
            p.push(&data[from..]);
            p.finish();
            let first = p.next_row().unwrap();
            assert_eq!(cells(&first), ["b@x.io", "plain"]);
            assert_eq!(first.end, r[2].end);
        }
    }

    #[test]
    fn oversized_rows_and_bad_utf8_are_row_problems_and_parsing_goes_on() {
        let mut data = b"email,note\n".to_vec();
        data.extend_from_slice(b"a@x.io,\"");
        data.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES * 2));
        data.extend_from_slice(b"\"\nb@x.io,M\xFCller\nc@x.io,ok\n");
        let r = rows(Shape::Csv { delimiter: ',' }, &data, 1000);
        assert_eq!(r.len(), 4);
        assert!(matches!(
            r[1].row,
            RawRow::Problem {
                code: "row_too_large",
                ..
            }
        ));
        assert!(matches!(
            r[2].row,
            RawRow::Problem {
                code: "invalid_encoding",
                column: Some(1),
                ..
            }
        ));
        assert_eq!(cells(&r[3]), ["c@x.io", "ok"]);
    }

    #[test]
    fn json_lines_rows() {
        let data = b"{\"email\":\"a@x.io\",\"score\":5,\"vip\":true,\"x\":null}\r\n\n[1]\n{bad\n{\"email\":{\"a\":1}}\n{\"email\":\"b@x.io\"}";
        for chunk in [1, 5, 4096] {
            let r = rows(Shape::JsonLines, data, chunk);
            assert_eq!(r.len(), 5, "chunk {chunk}");
            assert_eq!(
                r[0].row,
                RawRow::Named(vec![
                    ("email".into(), "a@x.io".into()),
                    ("score".into(), "5".into()),
                    ("vip".into(), "true".into()),
                ])
            );
            assert!(matches!(
                r[1].row,
                RawRow::Problem {
                    code: "not_an_object",
                    ..
                }
            ));
            assert!(matches!(
                r[2].row,
                RawRow::Problem {
                    code: "invalid_json",
                    ..
                }
            ));
            assert!(matches!(
                r[3].row,
                RawRow::Problem {
                    code: "invalid_value",
                    ..
                }
            ));
            assert_eq!(r[4].end, data.len() as u64);
        }
    }
}
