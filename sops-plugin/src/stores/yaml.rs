//! YAML store. Parsing uses saphyr-parser's event stream (with source spans) for structure and a
//! small lexical pass for comments, which serde-based YAML libraries drop. Emission is our own,
//! following go-yaml v3 as sops configures it (4-space indent, sequences indented under their
//! key, go-yaml's quoting rules), so decrypted output matches `sops decrypt` byte for byte on
//! ordinary files.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::error::{Error, Result};
use crate::value::{Key, Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    line: usize,
    col: usize,
}

#[derive(Clone, Debug)]
enum PKind {
    Scalar(Value),
    /// Entries: key text, key start, value.
    Map(Vec<(String, Pos, PNode)>),
    Seq(Vec<PNode>),
    /// An alias, expanded once comments are placed so that copies carry the anchored node's
    /// comments too (as go-yaml's shared nodes do).
    Alias(usize),
}

#[derive(Clone, Debug)]
struct PNode {
    start: Pos,
    /// Anchor id (0: none).
    anchor: usize,
    /// Line of the closing event (for flow collections: the line of `]` or `}`).
    end_line: usize,
    flow: bool,
    kind: PKind,
    /// Comments placed before child index `usize` (== len means at the end).
    comments: Vec<(usize, String)>,
}

struct Builder<'a> {
    events: Vec<(Event<'a>, Span)>,
    chars: Vec<char>,
    i: usize,
    anchors: HashMap<usize, PNode>,
    depth: usize,
    /// Nodes that alias expansion may still create (guards against "billion laughs").
    budget: usize,
}

/// Deeper nesting than this is refused (recursion guard; real manifests are far shallower).
const MAX_DEPTH: usize = 256;

fn node_count(n: &PNode) -> usize {
    1 + match &n.kind {
        PKind::Scalar(_) | PKind::Alias(_) => 0,
        PKind::Map(items) => items.iter().map(|(_, _, v)| node_count(v)).sum(),
        PKind::Seq(items) => items.iter().map(node_count).sum(),
    }
}

fn perr(msg: impl Into<String>) -> Error {
    Error::parse("YAML", msg)
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col(),
    }
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span)> {
        let ev = self
            .events
            .get(self.i)
            .cloned()
            .ok_or_else(|| perr("unexpected end of events"))?;
        self.i += 1;
        Ok(ev)
    }

    /// A collection's start event spans its opening `[`/`{` when it is a flow collection (an
    /// anchor or tag may come first); a block collection's span is empty or ends before content.
    fn is_flow(&self, span: &Span) -> bool {
        self.chars
            .get(span.start.index()..span.end.index())
            .is_some_and(|s| s.iter().any(|c| matches!(c, '[' | '{')))
    }

    /// An alias replaced by its anchored node as built so far (for keys and merge keys).
    fn resolved(&self, n: PNode) -> PNode {
        match n.kind {
            PKind::Alias(id) => self.anchors.get(&id).cloned().unwrap_or(n),
            _ => n,
        }
    }

    fn node(&mut self) -> Result<PNode> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(perr(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let r = self.node_inner();
        self.depth -= 1;
        r
    }

    fn node_inner(&mut self) -> Result<PNode> {
        let (ev, span) = self.next()?;
        let start = pos_of(&span);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let value = resolve_scalar(&text, style, tag.as_deref());
                let n = PNode {
                    start,
                    anchor,
                    end_line: start.line,
                    flow: false,
                    kind: PKind::Scalar(value),
                    comments: vec![],
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, n.clone());
                }
                Ok(n)
            }
            Event::Alias(id) => {
                let target = self
                    .anchors
                    .get(&id)
                    .ok_or_else(|| perr("alias to an unknown anchor"))?;
                let size = node_count(target);
                self.budget = self
                    .budget
                    .checked_sub(size)
                    .ok_or_else(|| perr("aliases expand to too many nodes"))?;
                Ok(PNode {
                    start,
                    anchor: 0,
                    end_line: start.line,
                    flow: false,
                    kind: PKind::Alias(id),
                    comments: vec![],
                })
            }
            Event::SequenceStart(anchor, _) => {
                let flow = self.is_flow(&span);
                let mut start = start;
                if !flow {
                    // Indentless sequences start at the first item's content: find its dash.
                    let mut i = span.start.index();
                    let mut col = span.start.col();
                    while i > 0 && col > 0 && self.chars.get(i) != Some(&'-') {
                        i -= 1;
                        col -= 1;
                    }
                    if self.chars.get(i) == Some(&'-') {
                        start.col = col;
                    }
                }
                let mut items = vec![];
                let end_line;
                loop {
                    if let Some((Event::SequenceEnd, end)) = self.events.get(self.i) {
                        end_line = end.start.line();
                        self.i += 1;
                        break;
                    }
                    items.push(self.node()?);
                }
                let n = PNode {
                    start,
                    anchor,
                    end_line,
                    flow,
                    kind: PKind::Seq(items),
                    comments: vec![],
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, n.clone());
                }
                Ok(n)
            }
            Event::MappingStart(anchor, _) => {
                let mut items: Vec<(String, Pos, PNode)> = vec![];
                let end_line;
                loop {
                    if let Some((Event::MappingEnd, end)) = self.events.get(self.i) {
                        end_line = end.start.line();
                        self.i += 1;
                        break;
                    }
                    let k = self.node()?;
                    let k = self.resolved(k);
                    let key = match &k.kind {
                        PKind::Scalar(v) => match v {
                            Value::Str(s) => s.clone(),
                            Value::Null => String::new(),
                            other => other
                                .scalar_text()
                                .ok_or_else(|| perr("unsupported map key"))?,
                        },
                        _ => return Err(perr("only string keys are supported")),
                    };
                    let mut v = self.node()?;
                    if key == "<<" {
                        v = self.resolved(v);
                        // Merge key: splice the referenced map's entries (go-yaml does the same).
                        if let PKind::Map(src) = &v.kind {
                            for e in src {
                                if !items.iter().any(|(k, _, _)| *k == e.0) {
                                    items.push(e.clone());
                                }
                            }
                            continue;
                        }
                    }
                    if items.iter().any(|(k, _, _)| *k == key) {
                        return Err(perr(format!("duplicate key '{key}'")));
                    }
                    items.push((key, k.start, v));
                }
                let n = PNode {
                    start,
                    anchor,
                    end_line,
                    flow: self.is_flow(&span),
                    kind: PKind::Map(items),
                    comments: vec![],
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, n.clone());
                }
                Ok(n)
            }
            other => Err(perr(format!("unexpected event {other:?}"))),
        }
    }
}

fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("!!str") | Some("tag:yaml.org,2002:str") => return Value::Str(text.to_string()),
        Some("!!int") | Some("!!float") | Some("!!bool") | Some("!!null") => {
            return resolve_plain(text);
        }
        Some(_) => return Value::Str(text.to_string()),
        None => {}
    }
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    resolve_plain(text)
}

/// go-yaml v3's implicit resolution of a plain scalar (timestamps stay strings, as go-yaml
/// does when decoding into an untyped value).
pub(crate) fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return Value::Str(s.to_string());
    }
    if let Some(t) = parse_timestamp(s) {
        return Value::Time(t);
    }
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    if let Some(i) = parse_go_int(&plain) {
        return Value::Int(i);
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

/// Go `strconv.ParseInt(s, 0, 64)`.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) =
        if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, d)
        } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, d)
        } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, d)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -mag } else { mag };
    i64::try_from(v).ok()
}

fn is_yaml_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Index just past the closing quote of the quoted scalar opening at `start`.
fn quoted_end(chars: &[char], start: usize, style: ScalarStyle) -> Option<usize> {
    let q = if style == ScalarStyle::DoubleQuoted {
        '"'
    } else {
        '\''
    };
    if chars.get(start) != Some(&q) {
        return None;
    }
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if q == '"' && c == '\\' {
            i += 2;
            continue;
        }
        if c == q {
            if q == '\'' && chars.get(i + 1) == Some(&'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

struct Comment {
    pos: Pos,
    text: String,
    /// Trails content on its line (`key: value # text`).
    inline: bool,
    /// Indented deeper than the next content line: it ends the blocks above it, and go-yaml
    /// keeps it with the deepest of them.
    foot: bool,
    /// Less indented than the next content line: go-yaml makes it a head comment of what
    /// follows, however little it is indented.
    head_of_next: bool,
    /// Nothing but comments follows: a foot comment of the whole document.
    at_end: bool,
}

/// Finds comments: `#` at line start or after whitespace, outside quoted and block scalars.
fn scan_comments(src: &str, excluded: &[(usize, usize)]) -> Vec<Comment> {
    let mut out = vec![];
    let mut idx = 0usize; // char index
    let mut ex = 0usize;
    // First content column of each line that has content (1-based line numbers).
    let mut content: Vec<(usize, usize)> = vec![];
    let mut blank: Vec<usize> = vec![];
    for (line, raw) in (1..).zip(src.split('\n')) {
        if raw.trim().is_empty() {
            blank.push(line);
        }
        let chars: Vec<char> = raw.chars().collect();
        let mut first_non_space: Option<usize> = None;
        let mut prev_ws = true;
        for (col, c) in chars.iter().enumerate() {
            let ci = idx + col;
            while ex < excluded.len() && excluded[ex].1 <= ci {
                ex += 1;
            }
            let inside = ex < excluded.len() && excluded[ex].0 <= ci && ci < excluded[ex].1;
            if !inside && *c == '#' && prev_ws {
                let text: String = chars[col + 1..].iter().collect();
                let text = text.trim_end_matches('\r').to_string();
                let eff_col = first_non_space.unwrap_or(col);
                out.push(Comment {
                    pos: Pos { line, col: eff_col },
                    text,
                    inline: first_non_space.is_some(),
                    foot: false,
                    head_of_next: false,
                    at_end: false,
                });
                break;
            }
            if first_non_space.is_none() && !c.is_whitespace() {
                first_non_space = Some(col);
            }
            prev_ws = c.is_whitespace();
        }
        if let Some(c) = first_non_space {
            content.push((line, c));
        }
        idx += chars.len() + 1;
    }
    // A comment directly after content (or continuing such a comment at the same column) that
    // is indented deeper than the next content line is a foot comment of the blocks it ends.
    let mut prev_comment: Option<(usize, usize, bool)> = None; // (line, col, foot)
    for c in out.iter_mut().filter(|c| !c.inline) {
        let next_line = content.iter().find(|(l, _)| *l > c.pos.line);
        // Trailing comments set off by a blank line belong to the document itself.
        let after = content
            .iter()
            .rev()
            .find(|(l, _)| *l < c.pos.line)
            .map_or(0, |(l, _)| *l);
        c.at_end = next_line.is_none() && blank.iter().any(|b| *b > after && *b < c.pos.line);
        let next = next_line.map(|(_, col)| *col).unwrap_or(0);
        let last_content = content
            .iter()
            .rev()
            .find(|(l, _)| *l < c.pos.line)
            .map(|(l, _)| *l);
        let follows = match prev_comment {
            Some((pl, pcol, pfoot)) if last_content.is_none_or(|lc| pl > lc) => {
                pfoot && pcol == c.pos.col
            }
            _ => last_content.is_some(),
        };
        c.foot = follows && c.pos.col > next;
        c.head_of_next = c.pos.col < next;
        prev_comment = Some((c.pos.line, c.pos.col, c.foot));
    }
    out
}

/// Column at which a block container's children start.
fn child_col(n: &PNode) -> Option<usize> {
    if n.flow {
        return None;
    }
    match &n.kind {
        PKind::Map(items) => items.first().map(|(_, p, _)| p.col),
        PKind::Seq(items) => {
            if items.is_empty() {
                None
            } else {
                Some(n.start.col)
            }
        }
        PKind::Scalar(_) | PKind::Alias(_) => None,
    }
}

/// Puts a comment in front of the first node (map entry or list item) that starts after it.
/// Between items of a list that is more indented than the comment, go-yaml keeps the comment
/// with the previous item's map instead. Returns false when nothing follows.
fn place_before_next(node: &mut PNode, c: &Comment) -> bool {
    let seq_col = node.start.col;
    match &mut node.kind {
        PKind::Map(items) => {
            for (i, (_, start, value)) in items.iter_mut().enumerate() {
                if *start > c.pos {
                    node.comments.push((i, c.text.clone()));
                    return true;
                }
                if place_before_next(value, c) {
                    return true;
                }
            }
            false
        }
        PKind::Seq(items) => {
            for i in 0..items.len() {
                if items[i].start > c.pos {
                    if i > 0
                        && c.pos.col < seq_col
                        && !items[i - 1].flow
                        && let PKind::Map(prev) = &items[i - 1].kind
                    {
                        let n = prev.len();
                        items[i - 1].comments.push((n, c.text.clone()));
                    } else {
                        node.comments.push((i, c.text.clone()));
                    }
                    return true;
                }
                if place_before_next(&mut items[i], c) {
                    return true;
                }
            }
            false
        }
        PKind::Scalar(_) | PKind::Alias(_) => false,
    }
}

fn covers(n: &PNode, c: &Comment) -> bool {
    n.flow
        && !matches!(n.kind, PKind::Scalar(_) | PKind::Alias(_))
        && n.start.line <= c.pos.line
        && c.pos.line <= n.end_line
}

/// Places one comment in the deepest block container whose region holds it and whose
/// children are not indented deeper than the comment.
fn place_comment(node: &mut PNode, c: &Comment, end: Option<Pos>) {
    // A comment inside a multi-line flow collection stays in it, before the element that
    // starts on its line (go-yaml keeps it with that element).
    let flow_child = match &mut node.kind {
        PKind::Map(items) => items.iter_mut().map(|(_, _, v)| v).find(|v| covers(v, c)),
        PKind::Seq(items) => items.iter_mut().find(|v| covers(v, c)),
        PKind::Scalar(_) | PKind::Alias(_) => None,
    };
    if let Some(child) = flow_child {
        place_comment(child, c, None);
        return;
    }
    let child_starts: Vec<Pos> = match &node.kind {
        PKind::Map(items) => items.iter().map(|(_, p, _)| *p).collect(),
        PKind::Seq(items) => items.iter().map(|n| n.start).collect(),
        PKind::Scalar(_) | PKind::Alias(_) => return,
    };
    let n = child_starts.len();
    let own_col = child_col(node);
    for i in 0..n {
        let region_start = child_starts[i];
        let region_end = if i + 1 < n {
            Some(child_starts[i + 1])
        } else {
            end
        };
        if c.pos <= region_start {
            continue;
        }
        if let Some(e) = region_end
            && c.pos >= e
        {
            continue;
        }
        let child = match &mut node.kind {
            PKind::Map(items) => &mut items[i].2,
            PKind::Seq(items) => &mut items[i],
            PKind::Scalar(_) | PKind::Alias(_) => return,
        };
        // An indentless list (`key:` then `- item` at the key's column) does not take a comment
        // at that column after its last item: go-yaml gives it to the enclosing map.
        let indentless_tail = matches!(&child.kind, PKind::Seq(items)
            if own_col == child_col(child)
                && items.last().is_some_and(|l| l.start < c.pos)
                && !c.foot
                && !c.inline
                && Some(c.pos.col) <= own_col);
        if let Some(cc) = child_col(child)
            && (cc <= c.pos.col || c.foot)
            && !indentless_tail
        {
            place_comment(child, c, region_end);
            return;
        }
    }
    let idx = child_starts.iter().filter(|p| **p < c.pos).count();
    if c.inline {
        // go-yaml keeps a line comment with the value on that line; sops then stores it inside
        // a flow collection (`key: [a, b] # c`), and before the key for anything else.
        // Likewise a comment trailing `- key: value` goes into that item's map.
        let in_seq = matches!(node.kind, PKind::Seq(_));
        let child = match &mut node.kind {
            PKind::Map(items) => items.get_mut(idx).map(|(_, _, v)| v),
            PKind::Seq(items) => items.get_mut(idx),
            PKind::Scalar(_) | PKind::Alias(_) => None,
        };
        if let Some(child) = child
            && child.start.line == c.pos.line
            && in_seq
            && !child.flow
            && matches!(child.kind, PKind::Map(_))
        {
            child.comments.insert(0, (0, c.text.clone()));
            return;
        }
    }
    node.comments.push((idx, c.text.clone()));
}

/// Replaces aliases by copies of their anchored nodes, comments included, in document order.
fn expand_aliases(
    n: &mut PNode,
    anchors: &mut HashMap<usize, PNode>,
    budget: &mut usize,
) -> Result<()> {
    match &mut n.kind {
        PKind::Alias(id) => {
            let target = anchors
                .get(id)
                .ok_or_else(|| perr("alias to an unknown anchor"))?;
            *budget = budget
                .checked_sub(node_count(target))
                .ok_or_else(|| perr("aliases expand to too many nodes"))?;
            let start = n.start;
            *n = target.clone();
            n.start = start;
            n.anchor = 0;
            return Ok(());
        }
        PKind::Map(items) => {
            for (_, _, v) in items.iter_mut() {
                expand_aliases(v, anchors, budget)?;
            }
        }
        PKind::Seq(items) => {
            for v in items.iter_mut() {
                expand_aliases(v, anchors, budget)?;
            }
        }
        PKind::Scalar(_) => {}
    }
    if n.anchor > 0 {
        anchors.insert(n.anchor, n.clone());
    }
    Ok(())
}

fn to_value(n: PNode) -> Value {
    let mut comments = n.comments.into_iter().peekable();
    match n.kind {
        PKind::Scalar(v) => v,
        // Expanded before conversion; an unexpanded one cannot occur.
        PKind::Alias(_) => Value::Null,
        PKind::Map(items) => {
            let mut out: Map = vec![];
            for (i, (k, _, v)) in items.into_iter().enumerate() {
                while let Some((_, t)) = comments.next_if(|(ci, _)| *ci <= i) {
                    out.push((Key::Comment(t), Value::Null));
                }
                out.push((Key::Str(k), to_value(v)));
            }
            for (_, t) in comments {
                out.push((Key::Comment(t), Value::Null));
            }
            Value::Map(out)
        }
        PKind::Seq(items) => {
            let mut out = vec![];
            for (i, v) in items.into_iter().enumerate() {
                while let Some((_, t)) = comments.next_if(|(ci, _)| *ci <= i) {
                    out.push(Value::Comment(t));
                }
                out.push(to_value(v));
            }
            for (_, t) in comments {
                out.push(Value::Comment(t));
            }
            Value::Seq(out)
        }
    }
}

/// `apiVersion` and `kind` of each document's top-level mapping, read from the event stream
/// without building a tree: memory stays flat however large the file is.
pub fn top_level_kinds(src: &str) -> Result<Vec<(Option<String>, Option<String>)>> {
    let mut out: Vec<(Option<String>, Option<String>)> = vec![];
    let mut depth = 0usize;
    let mut root_is_map = false;
    let mut key_pos = true;
    let mut key: Option<String> = None;
    let mut nested_is_key = false;
    for ev in Parser::new_from_str(src) {
        let (e, _) = ev.map_err(|e| {
            perr(format!(
                "{} at line {} column {}",
                e.info(),
                e.marker().line(),
                e.marker().col() + 1
            ))
        })?;
        match e {
            Event::DocumentStart(_) => {
                out.push((None, None));
                depth = 0;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if depth == 0 {
                    root_is_map = matches!(e, Event::MappingStart(..));
                    key_pos = true;
                    key = None;
                } else if depth == 1 {
                    nested_is_key = key_pos;
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    key_pos = !nested_is_key;
                    key = None;
                }
            }
            Event::Scalar(text, ..) if depth == 1 && root_is_map => {
                if key_pos {
                    key = Some(text.into_owned());
                    key_pos = false;
                } else {
                    if let (Some(k), Some(doc)) = (key.take(), out.last_mut()) {
                        match k.as_str() {
                            "apiVersion" => doc.0 = Some(text.into_owned()),
                            "kind" => doc.1 = Some(text.into_owned()),
                            _ => {}
                        }
                    }
                    key_pos = true;
                }
            }
            Event::Alias(_) if depth == 1 && root_is_map => {
                key = None;
                key_pos = !key_pos;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Parses a (multi-document) YAML stream; every document must be a map (or empty).
pub fn parse(src: &str) -> Result<Vec<Map>> {
    let mut events = vec![];
    for ev in Parser::new_from_str(src) {
        let (e, span) = ev.map_err(|e| {
            perr(format!(
                "{} at line {} column {}",
                e.info(),
                e.marker().line(),
                e.marker().col() + 1
            ))
        })?;
        events.push((e, span));
    }
    let chars: Vec<char> = src.chars().collect();
    let mut excluded = vec![];
    for (e, span) in &events {
        if let Event::Scalar(_, style, _, _) = e
            && *style != ScalarStyle::Plain
        {
            // Block spans start at the content. Quoted spans include the quotes, but the parser
            // can report an empty quoted scalar as reaching the end of its line, so find the
            // closing quote ourselves.
            let start = span.start.index();
            let end = match style {
                ScalarStyle::DoubleQuoted | ScalarStyle::SingleQuoted => {
                    quoted_end(&chars, start, *style).unwrap_or(span.end.index())
                }
                _ => span.end.index(),
            };
            excluded.push((start, end));
        }
    }
    excluded.sort();
    let comments = scan_comments(src, &excluded);

    let mut b = Builder {
        events,
        chars,
        i: 0,
        anchors: HashMap::new(),
        depth: 0,
        budget: 1_000_000,
    };
    let mut docs: Vec<(Pos, PNode)> = vec![];
    while b.i < b.events.len() {
        let (ev, span) = b.next()?;
        if let Event::DocumentStart(_) = ev {
            let start = pos_of(&span);
            let node = if matches!(b.events.get(b.i), Some((Event::DocumentEnd, _))) {
                PNode {
                    start,
                    anchor: 0,
                    end_line: 0,
                    flow: false,
                    kind: PKind::Map(vec![]),
                    comments: vec![],
                }
            } else {
                b.node()?
            };
            match node.kind {
                PKind::Map(_) => {}
                PKind::Scalar(Value::Null) => {}
                _ => {
                    return Err(perr(
                        "the top level of each YAML document must be a map (sops stores only maps)",
                    ));
                }
            }
            let node = if matches!(node.kind, PKind::Scalar(_)) {
                PNode {
                    start,
                    anchor: 0,
                    end_line: 0,
                    flow: false,
                    kind: PKind::Map(vec![]),
                    comments: vec![],
                }
            } else {
                node
            };
            docs.push((start, node));
        }
    }
    if docs.is_empty() {
        docs.push((
            Pos { line: 1, col: 0 },
            PNode {
                start: Pos { line: 1, col: 0 },
                anchor: 0,
                end_line: 0,
                flow: false,
                kind: PKind::Map(vec![]),
                comments: vec![],
            },
        ));
    }
    let starts: Vec<Pos> = docs.iter().map(|(p, _)| *p).collect();
    for c in &comments {
        let di = starts.iter().rposition(|s| *s <= c.pos).unwrap_or(0);
        let end = starts.get(di + 1).copied();
        if c.at_end && !c.inline {
            let root = &mut docs[di].1;
            let n = match &root.kind {
                PKind::Map(items) => items.len(),
                _ => 0,
            };
            root.comments.push((n, c.text.clone()));
        } else if !(c.head_of_next && place_before_next(&mut docs[di].1, c)) {
            place_comment(&mut docs[di].1, c, end);
        }
    }
    // Anchors are document-local in YAML, but go-yaml resolves them across the stream too.
    let mut anchors = HashMap::new();
    let mut budget = 1_000_000usize;
    for (_, d) in docs.iter_mut() {
        expand_aliases(d, &mut anchors, &mut budget)?;
    }
    Ok(docs
        .into_iter()
        .map(|(_, n)| match to_value(n) {
            Value::Map(m) => m,
            _ => vec![],
        })
        .collect())
}

// ---------------------------------------------------------------- emitter

const INDENT: usize = 4;

/// Emits documents as sops (go-yaml v3, indent 4) does, separated by `---`.
pub fn emit(docs: &[Map]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        if d.is_empty() {
            out.push_str("{}\n");
        } else {
            emit_map(&mut out, d, 0);
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn emit_map(out: &mut String, m: &[(Key, Value)], indent: usize) {
    let mut first = true;
    for (k, v) in m {
        if !first {
            pad(out, indent);
        }
        first = false;
        match k {
            Key::Comment(c) => {
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Key::Str(k) if k.len() > 128 || k.contains('\n') => {
                // Not a simple key for go-yaml: the explicit `? key` / `: value` form.
                out.push_str("? ");
                out.push_str(&scalar_str(k, false, align(indent)));
                out.push('\n');
                pad(out, indent);
                out.push(':');
                match v {
                    Value::Map(m) if !m.is_empty() => {
                        pad(out, INDENT - 1);
                        emit_map(out, m, align(indent));
                    }
                    Value::Seq(s) if !s.is_empty() => {
                        pad(out, INDENT - 1);
                        emit_seq(out, s, align(indent));
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&scalar(other, align(indent)));
                        out.push('\n');
                    }
                }
            }
            Key::Str(k) => {
                out.push_str(&scalar_str(k, true, indent));
                out.push(':');
                emit_value_after_key(out, v, indent);
            }
        }
    }
}

/// Emits one value on its own, as `sops decrypt --extract` prints a non-string value.
pub fn emit_value(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) if !m.is_empty() => emit_map(&mut out, m, 0),
        Value::Seq(s) if !s.is_empty() => emit_seq(&mut out, s, 0),
        other => {
            out.push_str(&scalar(other, INDENT));
            out.push('\n');
        }
    }
    out
}

/// go-yaml v3 aligns nested block content to the next multiple of the indent.
fn align(indent: usize) -> usize {
    INDENT * ((indent + INDENT) / INDENT)
}

fn emit_value_after_key(out: &mut String, v: &Value, indent: usize) {
    let inner = align(indent);
    match v {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            pad(out, inner);
            emit_map(out, m, inner);
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            pad(out, inner);
            emit_seq(out, s, inner);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, inner));
            out.push('\n');
        }
    }
}

fn emit_seq(out: &mut String, s: &[Value], indent: usize) {
    // Content of an item starts right after "- " (go-yaml's first indent in a sequence).
    let inner = indent + 2;
    let mut first = true;
    for v in s {
        if !first {
            pad(out, indent);
        }
        first = false;
        match v {
            Value::Comment(c) => {
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Value::Map(m) if !m.is_empty() => {
                // Comments heading the map are written above its dash, as go-yaml does.
                let lead = m
                    .iter()
                    .take_while(|(k, _)| matches!(k, Key::Comment(_)))
                    .count();
                for (k, _) in &m[..lead] {
                    if let Key::Comment(c) = k {
                        out.push('#');
                        out.push_str(c);
                        out.push('\n');
                        pad(out, indent);
                    }
                }
                if lead == m.len() {
                    out.push_str("- {}\n");
                } else {
                    out.push_str("- ");
                    emit_map(out, &m[lead..], inner);
                }
            }
            Value::Seq(items) if !items.is_empty() => {
                out.push_str("- ");
                emit_seq(out, items, inner);
            }
            other => {
                out.push_str("- ");
                out.push_str(&scalar(other, inner));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, block_indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_float_g(*f),
        Value::Str(s) => scalar_str(s, false, block_indent),
        Value::Bytes(b) => scalar_str(&String::from_utf8_lossy(b), false, block_indent),
        Value::Time(t) => t.clone(),
        Value::Comment(c) => scalar_str(c, false, block_indent),
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
    }
}

/// Go `strconv.FormatFloat(f, 'g', -1, 64)` with YAML's spellings of the specials.
pub(crate) fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (neg, digits, exp) = shortest_digits(f);
    let nd = digits.len() as i32;
    let mut eprec = 6;
    let dp = exp + 1;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if exp < -4 || exp >= eprec {
        s.push_str(&go_e_format(&digits, exp));
    } else {
        s.push_str(&format!("{}", f.abs()));
    }
    s
}

/// Shortest round-trip decimal digits and the decimal exponent (d.ddd × 10^exp).
pub(crate) fn shortest_digits(f: f64) -> (bool, String, i32) {
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    (f.is_sign_negative(), digits, exp.parse().unwrap_or(0))
}

/// Go's `%e` form of shortest digits: `d.ddde+XX` (at least two exponent digits).
pub(crate) fn go_e_format(digits: &str, exp: i32) -> String {
    let mut s = String::new();
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

#[derive(PartialEq, Clone, Copy)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = match b.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (b, None),
    };
    if let Some(f) = frac
        && !f.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if head.is_empty()
        || !head.as_bytes()[0].is_ascii_digit()
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut n = 0;
    for p in parts {
        n += 1;
        let ok = match p.len() {
            1 => p.as_bytes()[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&p.as_bytes()[0]) && p.as_bytes()[1].is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    n > 0
}

/// go-yaml's timestamp layouts (`2006-1-2`, `2006-1-2T15:4:5.999999999Z07:00`, the same with
/// `t`, and `2006-1-2 15:4:5.999999999`), rendered as Go's `time.RFC3339Nano`.
fn parse_timestamp(s: &str) -> Option<String> {
    fn num(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if n < min || n > max {
            return None;
        }
        Some((s[..n].parse().ok()?, &s[n..]))
    }
    let (y, r) = num(s, 4, 4)?;
    let (mo, r) = num(r.strip_prefix('-')?, 1, 2)?;
    let (d, r) = num(r.strip_prefix('-')?, 1, 2)?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] {
        return None;
    }
    let date = format!("{y:04}-{mo:02}-{d:02}");
    if r.is_empty() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let sep = r.as_bytes()[0];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let r = &r[1..];
    let (h, r) = num(r, 1, 2)?;
    let (mi, r) = num(r.strip_prefix(':')?, 1, 2)?;
    let (se, mut r) = num(r.strip_prefix(':')?, 1, 2)?;
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut frac = String::new();
    if let Some(rest) = r.strip_prefix('.') {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        frac = rest[..n].trim_end_matches('0').to_string();
        r = &rest[n..];
    }
    let zone = match sep {
        b'T' | b't' => match r {
            "Z" => "Z".to_string(),
            z if z.len() == 6
                && (z.starts_with('+') || z.starts_with('-'))
                && z.as_bytes()[3] == b':' =>
            {
                if &z[1..] == "00:00" {
                    "Z".to_string()
                } else {
                    z.to_string()
                }
            }
            _ => return None,
        },
        b' ' if r.is_empty() => "Z".to_string(),
        _ => return None,
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Some(format!("{date}T{h:02}:{mi:02}:{se:02}{frac}{zone}"))
}

fn looks_like_timestamp(s: &str) -> bool {
    // go-yaml accepts 2006-1-2 with optional [Tt ]15:4:5(.frac)(Z|±07:00); a date prefix is enough
    // to make it resolve as a timestamp for our purposes when the rest is a time.
    let b = s.as_bytes();
    let mut i = 0;
    let num = |i: &mut usize, min: usize, max: usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - st < max {
            *i += 1;
        }
        (*i - st) >= min
    };
    if !num(&mut i, 4, 4) || i >= b.len() || b[i] != b'-' {
        return false;
    }
    i += 1;
    if !num(&mut i, 1, 2) || i >= b.len() || b[i] != b'-' {
        return false;
    }
    i += 1;
    if !num(&mut i, 1, 2) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    if !matches!(b[i], b'T' | b't' | b' ') {
        return false;
    }
    i += 1;
    if !num(&mut i, 1, 2) || i >= b.len() || b[i] != b':' {
        return false;
    }
    i += 1;
    if !num(&mut i, 1, 2) || i >= b.len() || b[i] != b':' {
        return false;
    }
    i += 1;
    if !num(&mut i, 1, 2) {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        num(&mut i, 1, 9);
    }
    let rest = &s[i..];
    rest.is_empty() || rest == "Z" || {
        let r = rest.as_bytes();
        r.len() == 6 && matches!(r[0], b'+' | b'-') && r[3] == b':'
    }
}

fn resolves_to_str(s: &str) -> bool {
    if s == "<<" {
        return false;
    }
    matches!(resolve_plain(s), Value::Str(_)) && !looks_like_timestamp(s)
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `analyze_scalar` restricted to what block context needs:
/// (block_plain_allowed, single_quoted_allowed, block_allowed, multiline).
fn analyze(s: &str) -> (bool, bool, bool, bool) {
    if s.is_empty() {
        return (true, true, false, false);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_ind = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut special, mut line_breaks) =
        (false, false, false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let blankz = |c: Option<&char>| match c {
        None => true,
        Some(c) => *c == ' ' || *c == '\t' || is_break(*c),
    };
    let mut preceded_ws = true;
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        let followed_ws = blankz(chars.get(i + 1));
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                block_ind = true;
            }
            if (c == '?' || c == ':') && followed_ws {
                block_ind = true;
            }
            if c == '-' && followed_ws {
                block_ind = true;
            }
        } else {
            if c == ':' && followed_ws {
                block_ind = true;
            }
            if c == '#' && preceded_ws {
                block_ind = true;
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_break = true;
            prev_space = false;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = blankz(Some(&c));
    }
    let mut block_plain = true;
    let mut single = true;
    let mut block = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        block_plain = false;
    }
    if trailing_space {
        block = false;
    }
    if break_space {
        block_plain = false;
        single = false;
    }
    if space_break || special {
        block_plain = false;
        single = false;
        block = false;
    }
    if line_breaks {
        block_plain = false;
    }
    if block_ind {
        block_plain = false;
    }
    (block_plain, single, block, line_breaks)
}

/// Renders a string as go-yaml v3 would (style choice of its encoder, then its emitter).
fn scalar_str(s: &str, is_key: bool, block_indent: usize) -> String {
    let can_plain = resolves_to_str(s) && !is_base60_float(s) && !is_old_bool(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if can_plain {
        Style::Plain
    } else {
        Style::Double
    };
    let (block_plain, single_ok, block_ok, multiline) = analyze(s);
    if style == Style::Plain && (!block_plain || (s.is_empty() && is_key) || (multiline && is_key))
    {
        style = Style::Single;
    }
    if style == Style::Single && !single_ok {
        style = Style::Double;
    }
    if style == Style::Literal && (!block_ok || is_key) {
        style = Style::Double;
    }
    match style {
        Style::Plain => s.to_string(),
        Style::Single => format!("'{}'", s.replace('\'', "''")),
        Style::Double => double_quoted(s),
        Style::Literal => literal(s, block_indent),
    }
}

fn double_quoted(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '\0' => o.push_str("\\0"),
            '\x07' => o.push_str("\\a"),
            '\x08' => o.push_str("\\b"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\x0b' => o.push_str("\\v"),
            '\x0c' => o.push_str("\\f"),
            '\r' => o.push_str("\\r"),
            '\x1b' => o.push_str("\\e"),
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\u{85}' => o.push_str("\\N"),
            '\u{a0}' => o.push_str("\\_"),
            '\u{2028}' => o.push_str("\\L"),
            '\u{2029}' => o.push_str("\\P"),
            c if !is_printable(c) || c == '\u{feff}' => {
                let u = c as u32;
                if u <= 0xFF {
                    o.push_str(&format!("\\x{u:02X}"));
                } else if u <= 0xFFFF {
                    o.push_str(&format!("\\u{u:04X}"));
                } else {
                    o.push_str(&format!("\\U{u:08X}"));
                }
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn literal(s: &str, indent: usize) -> String {
    let mut o = String::from("|");
    if s.starts_with(' ') || s.starts_with('\n') {
        o.push_str(&INDENT.to_string());
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    match trailing {
        0 => o.push('-'),
        1 => {}
        _ => o.push('+'),
    }
    let body = if trailing == 1 { &s[..s.len() - 1] } else { s };
    let body = if trailing > 1 {
        &body[..body.len() - 1]
    } else {
        body
    };
    for line in body.split('\n') {
        o.push('\n');
        if !line.is_empty() {
            for _ in 0..indent {
                o.push(' ');
            }
            o.push_str(line);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_like_scalars_never_panic() {
        for s in [
            "2001-12-14é",
            "2001-12-14T",
            "2001-12-14 1:2",
            "2001-13-01",
            "2001-02-29",
            "2000-02-29",
        ] {
            let docs = parse(&format!("a: {s}\n"));
            assert!(docs.is_ok(), "{s}");
        }
        assert_eq!(
            resolve_plain("2000-02-29"),
            Value::Time("2000-02-29T00:00:00Z".into())
        );
        assert_eq!(resolve_plain("2001-02-29"), Value::Str("2001-02-29".into()));
    }

    #[test]
    fn hostile_inputs_are_refused() {
        let deep = "a: ".to_string() + &"[".repeat(10_000);
        assert!(parse(&deep).is_err());
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = parse(&laughs)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("too many nodes"), "{err}");
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float_g(1000.0), "1000");
        assert_eq!(format_float_g(1.234568e9), "1.234568e+09");
        assert_eq!(format_float_g(2.71), "2.71");
        assert_eq!(format_float_g(1e21), "1e+21");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(0.00001), "1e-05");
    }

    #[test]
    fn quoting_like_go_yaml() {
        assert_eq!(scalar_str("y", false, 4), "\"y\"");
        assert_eq!(scalar_str("p@ss: w0rd", false, 4), "'p@ss: w0rd'");
        assert_eq!(scalar_str("", false, 4), "\"\"");
        assert_eq!(
            scalar_str("2026-11-24T17:49:19Z", false, 4),
            "\"2026-11-24T17:49:19Z\""
        );
        assert_eq!(scalar_str("3.11.0", false, 4), "3.11.0");
        assert_eq!(scalar_str("Grüße 🌍", false, 4), "\"Grüße \\U0001F30D\"");
        assert_eq!(scalar_str("a\nb\n", false, 4), "|\n    a\n    b");
    }
}
