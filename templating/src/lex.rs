//! The lexer of Go's text/template (parse/lex.go): text and actions, trim markers, comments,
//! quoted strings that may contain the right delimiter, raw strings, char constants, numbers.

use crate::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Pipe,
    Declare,
    Assign,
    LeftParen,
    RightParen,
    /// Any other printable ASCII character, e.g. the `,` between range variables.
    Char(char),
    /// A quoted string as written, quotes included.
    Str(String),
    RawStr(String),
    CharConst(String),
    Number(String),
    Bool(bool),
    Nil,
    Dot,
    /// `.name`
    Field(String),
    /// `$` or `$name`
    Variable(String),
    Identifier(String),
    Keyword(Keyword),
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: usize,
}

const TRIM_MARKER: u8 = b'-';
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == TRIM_MARKER && is_space(b[1])
}

fn has_right_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0]) && b[1] == TRIM_MARKER
}

pub(crate) fn lex(input: &str, left: &str, right: &str) -> Result<Vec<Token>, TemplateError> {
    let mut l = Lexer {
        input,
        left,
        right,
        pos: 0,
        line: 1,
        tokens: Vec::new(),
        paren_depth: 0,
    };
    l.run()?;
    Ok(l.tokens)
}

struct Lexer<'a> {
    input: &'a str,
    left: &'a str,
    right: &'a str,
    pos: usize,
    line: usize,
    tokens: Vec<Token>,
    paren_depth: usize,
}

impl<'a> Lexer<'a> {
    fn err<T>(&self, msg: impl std::fmt::Display) -> Result<T, TemplateError> {
        Err(TemplateError(format!("line {}: {msg}", self.line)))
    }

    fn emit(&mut self, tok: Tok) {
        self.tokens.push(Token {
            tok,
            line: self.line,
        });
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim(rest) && rest[2..].starts_with(self.right) {
            return (true, true);
        }
        (rest.starts_with(self.right), false)
    }

    fn advance(&mut self, n: usize) {
        let taken = &self.input[self.pos..self.pos + n];
        self.line += taken.bytes().filter(|&b| b == b'\n').count();
        self.pos += n;
    }

    fn run(&mut self) -> Result<(), TemplateError> {
        loop {
            // Text up to the next left delimiter.
            let rest = self.rest();
            let Some(x) = rest.find(self.left) else {
                if !rest.is_empty() {
                    let text = rest.to_string();
                    self.emit(Tok::Text(text));
                    self.advance(rest.len());
                }
                self.emit(Tok::Eof);
                return Ok(());
            };
            let after = &rest[x + self.left.len()..];
            let mut text = &rest[..x];
            if has_left_trim(after) {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                let t = text.to_string();
                self.emit(Tok::Text(t));
            }
            self.advance(x + self.left.len());
            // The left delimiter.
            let trim = has_left_trim(self.rest());
            let after_marker = if trim { 2 } else { 0 };
            if self.rest()[after_marker..].starts_with(LEFT_COMMENT) {
                self.advance(after_marker + LEFT_COMMENT.len());
                let Some(end) = self.rest().find(RIGHT_COMMENT) else {
                    return self.err("unclosed comment");
                };
                self.advance(end + RIGHT_COMMENT.len());
                let (delim, trim_right) = self.at_right_delim();
                if !delim {
                    return self.err("comment ends before closing delimiter");
                }
                if trim_right {
                    self.advance(2);
                }
                self.advance(self.right.len());
                if trim_right {
                    self.skip_leading_space();
                }
                continue;
            }
            self.emit(Tok::LeftDelim);
            self.advance(after_marker);
            self.paren_depth = 0;
            self.inside_action()?;
        }
    }

    fn skip_leading_space(&mut self) {
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
        self.advance(n);
    }

    fn inside_action(&mut self) -> Result<(), TemplateError> {
        loop {
            let (delim, trim) = self.at_right_delim();
            if delim {
                if self.paren_depth != 0 {
                    return self.err("unclosed left paren");
                }
                if trim {
                    self.advance(2);
                }
                self.advance(self.right.len());
                self.emit(Tok::RightDelim);
                if trim {
                    self.skip_leading_space();
                }
                return Ok(());
            }
            let Some(c) = self.peek() else {
                return self.err("unclosed action");
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    // A run of spaces; leave " -}}" for the delimiter check.
                    let rest = self.rest();
                    let mut n = 0;
                    while n < rest.len() && is_space(rest.as_bytes()[n]) {
                        n += 1;
                    }
                    let before_last = &rest[n - 1..];
                    if has_right_trim(before_last) && before_last[2..].starts_with(self.right) {
                        if n == 1 {
                            continue_delim(self)?;
                            return Ok(());
                        }
                        self.advance(n - 1);
                    } else {
                        self.advance(n);
                    }
                    self.emit(Tok::Space);
                }
                '=' => {
                    self.advance(1);
                    self.emit(Tok::Assign);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.err("expected :=");
                    }
                    self.advance(2);
                    self.emit(Tok::Declare);
                }
                '|' => {
                    self.advance(1);
                    self.emit(Tok::Pipe);
                }
                '"' => self.quote()?,
                '`' => self.raw_quote()?,
                '$' => self.field_or_variable(true)?,
                '\'' => self.char_const()?,
                '.' => {
                    let next = self.rest().as_bytes().get(1).copied();
                    if next.is_some_and(|b| b.is_ascii_digit()) {
                        self.number()?;
                    } else {
                        self.field_or_variable(false)?;
                    }
                }
                '+' | '-' | '0'..='9' => self.number()?,
                '(' => {
                    self.advance(1);
                    self.emit(Tok::LeftParen);
                    self.paren_depth += 1;
                }
                ')' => {
                    self.advance(1);
                    if self.paren_depth == 0 {
                        return self.err("unexpected right paren");
                    }
                    self.paren_depth -= 1;
                    self.emit(Tok::RightParen);
                }
                c if is_alnum(c) => self.identifier()?,
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.advance(1);
                    self.emit(Tok::Char(c));
                }
                c => return self.err(format!("unrecognized character in action: {:?}", c)),
            }
        }

        fn continue_delim(l: &mut Lexer<'_>) -> Result<(), TemplateError> {
            // One space, then "-" and the delimiter.
            l.advance(2);
            l.advance(l.right.len());
            l.emit(Tok::RightDelim);
            l.skip_leading_space();
            if l.paren_depth != 0 {
                return l.err("unclosed left paren");
            }
            Ok(())
        }
    }

    fn at_terminator(&self) -> bool {
        let rest = self.rest();
        match rest.as_bytes().first() {
            None => true,
            Some(&b) if is_space(b) => true,
            Some(b'.' | b',' | b'|' | b':' | b')' | b'(') => true,
            Some(_) => {
                rest.starts_with(self.right)
                    || self
                        .right
                        .chars()
                        .next()
                        .is_some_and(|r| rest.starts_with(r))
            }
        }
    }

    fn field_or_variable(&mut self, variable: bool) -> Result<(), TemplateError> {
        let start = self.pos;
        self.advance(1);
        if self.at_terminator() {
            self.emit(if variable {
                Tok::Variable("$".into())
            } else {
                Tok::Dot
            });
            return Ok(());
        }
        let rest = self.rest();
        let n: usize = rest
            .chars()
            .take_while(|&c| is_alnum(c))
            .map(char::len_utf8)
            .sum();
        self.advance(n);
        if !self.at_terminator() {
            return self.err(format!("bad character {:?}", self.peek().unwrap_or(' ')));
        }
        let word = self.input[start..self.pos].to_string();
        if variable {
            self.emit(Tok::Variable(word));
        } else {
            self.emit(Tok::Field(word[1..].to_string()));
        }
        Ok(())
    }

    fn identifier(&mut self) -> Result<(), TemplateError> {
        let rest = self.rest();
        let n: usize = rest
            .chars()
            .take_while(|&c| is_alnum(c))
            .map(char::len_utf8)
            .sum();
        let word = rest[..n].to_string();
        self.advance(n);
        if !self.at_terminator() {
            return self.err(format!("bad character {:?}", self.peek().unwrap_or(' ')));
        }
        let tok = match word.as_str() {
            "block" => Tok::Keyword(Keyword::Block),
            "break" => Tok::Keyword(Keyword::Break),
            "continue" => Tok::Keyword(Keyword::Continue),
            "define" => Tok::Keyword(Keyword::Define),
            "else" => Tok::Keyword(Keyword::Else),
            "end" => Tok::Keyword(Keyword::End),
            "if" => Tok::Keyword(Keyword::If),
            "range" => Tok::Keyword(Keyword::Range),
            "template" => Tok::Keyword(Keyword::Template),
            "with" => Tok::Keyword(Keyword::With),
            "nil" => Tok::Nil,
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            _ => Tok::Identifier(word),
        };
        self.emit(tok);
        Ok(())
    }

    /// A quoted string ends at an unescaped quote, never at a delimiter inside it.
    fn quote(&mut self) -> Result<(), TemplateError> {
        let s = self.escaped_until(b'"', "unterminated quoted string")?;
        self.emit(Tok::Str(s));
        Ok(())
    }

    /// The text from the opening quote through the first unescaped `close` on the same line.
    fn escaped_until(&mut self, close: u8, unterminated: &str) -> Result<String, TemplateError> {
        let bytes = self.rest().as_bytes();
        let mut i = 1;
        loop {
            match bytes.get(i) {
                Some(b'\\') => {
                    if matches!(bytes.get(i + 1), None | Some(b'\n')) {
                        return self.err(unterminated);
                    }
                    i += 2;
                }
                Some(&b) if b == close => break,
                None | Some(b'\n') => return self.err(unterminated),
                Some(_) => i += 1,
            }
        }
        let s = self.rest()[..=i].to_string();
        self.advance(i + 1);
        Ok(s)
    }

    fn raw_quote(&mut self) -> Result<(), TemplateError> {
        let Some(end) = self.rest()[1..].find('`') else {
            return self.err("unterminated raw quoted string");
        };
        let s = self.rest()[1..=end].to_string();
        self.advance(end + 2);
        self.emit(Tok::RawStr(s));
        Ok(())
    }

    fn char_const(&mut self) -> Result<(), TemplateError> {
        let s = self.escaped_until(b'\'', "unterminated character constant")?;
        self.emit(Tok::CharConst(s));
        Ok(())
    }

    fn number(&mut self) -> Result<(), TemplateError> {
        let b = self.rest().as_bytes();
        let mut i = 0;
        if matches!(b.first(), Some(b'+' | b'-')) {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp: &[u8] = b"eE";
        if b.get(i) == Some(&b'0') {
            match b.get(i + 1) {
                Some(b'x' | b'X') => {
                    i += 2;
                    digits = b"0123456789abcdefABCDEF_";
                    exp = b"pP";
                }
                Some(b'o' | b'O') => {
                    i += 2;
                    digits = b"01234567_";
                    exp = b"";
                }
                Some(b'b' | b'B') => {
                    i += 2;
                    digits = b"01_";
                    exp = b"";
                }
                _ => {}
            }
        }
        while b.get(i).is_some_and(|c| digits.contains(c)) {
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            while b.get(i).is_some_and(|c| digits.contains(c)) {
                i += 1;
            }
        }
        if !exp.is_empty() && b.get(i).is_some_and(|c| exp.contains(c)) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            while b.get(i).is_some_and(|c| b"0123456789_".contains(c)) {
                i += 1;
            }
        }
        if b.get(i) == Some(&b'i') {
            i += 1;
        }
        let bad = b
            .get(i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80);
        if bad {
            // The offending character may be multi-byte: take it whole, never slice inside it.
            let rest = self.rest();
            let word: String = rest[..i].chars().chain(rest[i..].chars().next()).collect();
            return self.err(format!("bad number syntax: {word:?}"));
        }
        let s = self.rest()[..i].to_string();
        self.advance(i);
        self.emit(Tok::Number(s));
        Ok(())
    }
}
