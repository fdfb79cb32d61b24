//! A streaming splitter for one big JSON object of the shape `{"key": value, "objects": [ {..},
//! {..}, ... ]}`: it hands over each top-level member and each element of `objects` as the raw
//! bytes of one JSON value, which the caller parses with serde_json.
//!
//! Why not `serde_json::from_reader`: it reads byte by byte through `io::Read` and spends most of
//! an import there (95 ms of 160 ms for enterprise 18.1); reading the whole file first would hold
//! all 37 MB at once. This keeps memory at one chunk plus the largest single object and lets
//! serde_json parse each object from a slice, its fast path. It only finds where values begin and
//! end (strings, escapes, nesting); serde_json still validates every byte of every value, and the
//! punctuation between values is checked here.

use std::io::Read;

const CHUNK: usize = 256 * 1024;

/// Where something is in the file, for error messages (1-based, columns in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
    pub offset: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug)]
pub enum ScanError {
    Io(std::io::Error),
    /// The input ended inside a value or before the closing brace.
    Truncated {
        at: Position,
        inside: String,
    },
    /// Something that is not the expected JSON punctuation.
    Syntax {
        at: Position,
        message: String,
    },
    /// The top-level value is not an object.
    NotAnObject {
        first: u8,
        at: Position,
    },
    /// A callback refused a value; its message says where.
    Value {
        message: String,
    },
}

/// What the caller is handed: a top-level member (other than `objects`), or one element of
/// `objects`. The slice is only valid during the call.
pub enum Item<'a> {
    Member { key: &'a str, value: &'a [u8] },
    ObjectsStart,
    Object { index: usize, value: &'a [u8] },
}

pub struct Scanner<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// Line numbers are counted lazily and only forwards, up to `counted_to` in `buf`: positions
    /// are asked for in file order, so each byte is counted once.
    counted_to: usize,
    line: u64,
    /// File offset where the line holding `buf[counted_to]` starts.
    line_start: u64,
    /// The same two for `buf[0]`, for the rare position asked for behind `counted_to`.
    buf0_line: u64,
    buf0_line_start: u64,
    eof: bool,
}

impl<R: Read> Scanner<R> {
    pub fn new(reader: R) -> Self {
        Scanner {
            reader,
            buf: Vec::with_capacity(CHUNK * 2),
            pos: 0,
            base: 0,
            counted_to: 0,
            line: 1,
            line_start: 0,
            buf0_line: 1,
            buf0_line_start: 0,
            eof: false,
        }
    }

    /// Drops the bytes before `keep_from` and reads another chunk. Returns false at end of input.
    fn fill(&mut self, keep_from: usize) -> Result<bool, ScanError> {
        if self.eof {
            return Ok(false);
        }
        if keep_from >= self.counted_to {
            self.count_lines_to(keep_from);
            self.buf0_line = self.line;
            self.buf0_line_start = self.line_start;
        } else {
            // Counted past the new start: work out the new start's line from behind.
            let ahead = &self.buf[keep_from..self.counted_to];
            self.buf0_line = self.line - memchr::memchr_iter(b'\n', ahead).count() as u64;
            if let Some(nl) = memchr::memrchr(b'\n', &self.buf[..keep_from]) {
                self.buf0_line_start = self.base + nl as u64 + 1;
            }
        }
        self.counted_to -= keep_from;
        self.base += keep_from as u64;
        self.buf.drain(..keep_from);
        self.pos -= keep_from;
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ScanError::Io(e)),
            }
        };
        self.buf.truncate(len + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    fn count_lines_to(&mut self, to: usize) {
        let seg = &self.buf[self.counted_to..to];
        self.line += memchr::memchr_iter(b'\n', seg).count() as u64;
        if let Some(nl) = memchr::memrchr(b'\n', seg) {
            self.line_start = self.base + (self.counted_to + nl) as u64 + 1;
        }
        self.counted_to = to;
    }

    /// Position of `buf[i]`.
    pub fn position(&mut self, i: usize) -> Position {
        let i = i.min(self.buf.len());
        let offset = self.base + i as u64;
        if i >= self.counted_to {
            self.count_lines_to(i);
            return Position { line: self.line, column: offset - self.line_start + 1, offset };
        }
        let before = &self.buf[..i];
        let line = self.buf0_line + memchr::memchr_iter(b'\n', before).count() as u64;
        let line_start = match memchr::memrchr(b'\n', before) {
            Some(nl) => self.base + nl as u64 + 1,
            None => self.buf0_line_start,
        };
        Position { line, column: offset - line_start + 1, offset }
    }

    /// Skips white space; returns the next byte without consuming it, or None at end of input.
    fn peek(&mut self) -> Result<Option<u8>, ScanError> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if !self.fill(self.pos)? {
                return Ok(None);
            }
        }
    }

    fn expect(&mut self, wanted: &[u8], inside: &str) -> Result<u8, ScanError> {
        match self.peek()? {
            Some(b) if wanted.contains(&b) => {
                self.pos += 1;
                Ok(b)
            }
            Some(b) => Err(ScanError::Syntax {
                at: self.position(self.pos),
                message: format!("expected {} {inside}, found {}", describe(wanted), show(b)),
            }),
            None => Err(self.truncated(inside)),
        }
    }

    fn truncated(&mut self, inside: &str) -> ScanError {
        ScanError::Truncated { at: self.position(self.buf.len()), inside: inside.to_owned() }
    }

    /// Finds the end of the JSON value starting at `self.pos` (after white space) and returns
    /// its range in `buf`; `self.pos` is left after it.
    fn value(&mut self, inside: &str) -> Result<(usize, usize), ScanError> {
        if self.peek()?.is_none() {
            return Err(self.truncated(inside));
        }
        let mut i = 0; // offset from self.pos, which `fill` keeps at the value's first byte
        let mut depth = 0usize;
        loop {
            let Some(&b) = self.buf.get(self.pos + i) else {
                if self.fill(self.pos)? {
                    continue;
                }
                // A bare number or literal may end the input; anything else was cut short.
                if depth == 0 && i > 0 && !matches!(self.buf[self.pos], b'"' | b'{' | b'[') {
                    break;
                }
                return Err(self.truncated(inside));
            };
            match b {
                b'"' => {
                    i = self.string_end(i + 1, inside)?;
                    if depth == 0 {
                        break;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        let start = self.pos;
        self.pos += i;
        Ok((start, start + i))
    }

    /// Given the offset just after an opening quote, returns the offset just after the closing one.
    fn string_end(&mut self, mut i: usize, inside: &str) -> Result<usize, ScanError> {
        loop {
            let hay = &self.buf[(self.pos + i).min(self.buf.len())..];
            match memchr::memchr2(b'"', b'\\', hay) {
                Some(k) if hay[k] == b'"' => return Ok(i + k + 1),
                // An escape: skip it and the byte it escapes (which may be a quote).
                Some(k) if k + 1 < hay.len() => i += k + 2,
                Some(k) => {
                    i += k; // keep the backslash in view; more input is needed to see past it
                    if !self.fill(self.pos)? {
                        return Err(self.truncated(inside));
                    }
                }
                None => {
                    i += hay.len();
                    if !self.fill(self.pos)? {
                        return Err(self.truncated(inside));
                    }
                }
            }
        }
    }

    /// Walks the whole input, calling `f` for every member and every element of `objects`.
    pub fn run(mut self, mut f: impl FnMut(Item<'_>, Position) -> Result<(), String>) -> Result<(), ScanError> {
        match self.peek()? {
            Some(b'{') => self.pos += 1,
            Some(b) => return Err(ScanError::NotAnObject { first: b, at: self.position(self.pos) }),
            None => return Err(self.truncated("the file (it is empty)")),
        }
        if self.peek()? == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                let (ks, ke) = self.value("a member name of the bundle")?;
                let at = self.position(ks);
                let key: String = match serde_json::from_slice(&self.buf[ks..ke]) {
                    Ok(k) => k,
                    Err(e) => return Err(ScanError::Syntax { at, message: format!("expected a member name: {e}") }),
                };
                self.expect(b":", "after a member name of the bundle")?;
                if key == "objects" && self.peek()? == Some(b'[') {
                    self.objects(&mut f)?;
                } else {
                    let (vs, ve) = self.value("a member of the bundle")?;
                    let at = self.position(vs);
                    f(Item::Member { key: &key, value: &self.buf[vs..ve] }, at)
                        .map_err(|message| ScanError::Value { message })?;
                }
                if self.expect(b",}", "between the bundle's members")? == b'}' {
                    break;
                }
            }
        }
        match self.peek()? {
            None => Ok(()),
            Some(b) => Err(ScanError::Syntax {
                at: self.position(self.pos),
                message: format!("unexpected {} after the end of the bundle", show(b)),
            }),
        }
    }

    fn objects(&mut self, f: &mut impl FnMut(Item<'_>, Position) -> Result<(), String>) -> Result<(), ScanError> {
        self.pos += 1; // '['
        f(Item::ObjectsStart, self.position(self.pos)).map_err(|message| ScanError::Value { message })?;
        if self.peek()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            let inside = format!("objects[{index}]");
            let (vs, ve) = self.value(&inside)?;
            let at = self.position(vs);
            f(Item::Object { index, value: &self.buf[vs..ve] }, at).map_err(|message| ScanError::Value { message })?;
            index += 1;
            if self.expect(b",]", "between the elements of \"objects\"")? == b']' {
                return Ok(());
            }
        }
    }
}

pub fn show(b: u8) -> String {
    if b.is_ascii_graphic() { format!("'{}'", b as char) } else { format!("byte 0x{b:02x}") }
}

fn describe(wanted: &[u8]) -> String {
    let v: Vec<String> = wanted.iter().map(|&b| format!("'{}'", b as char)).collect();
    v.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what the scanner hands over, reading through a reader that returns `step`
    /// bytes at a time so that every value straddles chunk boundaries.
    fn scan(input: &[u8], step: usize) -> Result<Vec<String>, ScanError> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(self.0.len()).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        Scanner::new(Trickle(input, step)).run(|item, _| {
            out.push(match item {
                Item::Member { key, value } => format!("{key}={}", String::from_utf8_lossy(value)),
                Item::ObjectsStart => "[".to_owned(),
                Item::Object { index, value } => format!("{index}:{}", String::from_utf8_lossy(value)),
            });
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn splits_members_and_objects_whatever_the_chunking() {
        let input = br#" { "type" : "bundle", "id":"b\"1\\", "n": -1.5e3, "objects": [ {"a": "x}]\"{"}, {"b": [1, {"c": null}]} , 7, "s" ], "z": true }
"#;
        let expected = [
            "type=\"bundle\"",
            "id=\"b\\\"1\\\\\"",
            "n=-1.5e3",
            "[",
            "0:{\"a\": \"x}]\\\"{\"}",
            "1:{\"b\": [1, {\"c\": null}]}",
            "2:7",
            "3:\"s\"",
            "z=true",
        ];
        for step in [1, 2, 3, 7, 64, 1 << 20] {
            assert_eq!(scan(input, step).unwrap(), expected, "step {step}");
        }
    }

    #[test]
    fn reports_truncation_with_where_it_happened() {
        let input = b"{\"type\": \"bundle\",\n \"objects\": [{\"a\": 1}, {\"b\": \"unterminated";
        for step in [1, 5, 1 << 20] {
            match scan(input, step) {
                Err(ScanError::Truncated { at, inside }) => {
                    assert_eq!(inside, "objects[1]");
                    assert_eq!((at.line, at.offset), (2, input.len() as u64));
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(scan(b"", 1), Err(ScanError::Truncated { .. })));
        assert!(matches!(scan(b"{\"objects\": [", 1), Err(ScanError::Truncated { .. })));
        assert!(matches!(scan(b"{\"type\": \"bundle\"", 1), Err(ScanError::Truncated { .. })));
    }

    #[test]
    fn reports_bad_punctuation_with_its_position() {
        match scan(b"{\"type\": \"bundle\"\n  \"objects\": []}", 4) {
            Err(ScanError::Syntax { at, message }) => {
                assert_eq!((at.line, at.column), (2, 3));
                assert!(message.contains("expected ',' or '}'"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(scan(b"[1,2]", 1), Err(ScanError::NotAnObject { .. })));
        assert!(matches!(scan(b"{} x", 1), Err(ScanError::Syntax { .. })));
        assert!(matches!(scan(b"{\"objects\": [1 2]}", 1), Err(ScanError::Syntax { .. })));
    }
}
