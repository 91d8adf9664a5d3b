//! Structure: saphyr-parser's event stream (with source spans) built into a node tree, aliases
//! expanded under a node budget, then plain values.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::comments::{place_before_next, place_comment, quoted_end, scan_comments};
use super::node::{PKind, PNode, Pos};
use super::resolve::resolve_scalar;
use crate::error::{Error, Result};
use crate::value::{Key, Map, Value};

pub(super) struct Builder<'a> {
    pub(super) events: Vec<(Event<'a>, Span)>,
    pub(super) chars: Vec<char>,
    pub(super) i: usize,
    pub(super) anchors: HashMap<usize, PNode>,
    pub(super) depth: usize,
    /// Nodes that alias expansion may still create (guards against "billion laughs").
    pub(super) budget: usize,
}

/// Deeper nesting than this is refused (recursion guard; real manifests are far shallower).
pub(super) const MAX_DEPTH: usize = 256;

pub(super) fn node_count(n: &PNode) -> usize {
    1 + match &n.kind {
        PKind::Scalar(_) | PKind::Alias(_) => 0,
        PKind::Map(items) => items.iter().map(|(_, _, v)| node_count(v)).sum(),
        PKind::Seq(items) => items.iter().map(node_count).sum(),
    }
}

pub(super) fn perr(msg: impl Into<String>) -> Error {
    Error::parse("YAML", msg)
}

pub(super) fn pos_of(span: &Span) -> Pos {
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

/// Replaces aliases by copies of their anchored nodes, comments included, in document order.
pub(super) fn expand_aliases(
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

pub(super) fn to_value(n: PNode) -> Value {
    let mut comments = n.comments.into_iter().peekable();
    match n.kind {
        PKind::Scalar(v) => v,
        // Expanded before conversion; an unexpanded one cannot occur.
        PKind::Alias(_) => Value::Null,
        PKind::Map(items) => {
            let mut out: Map = Map::default();
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
        let (e, _) = ev.map_err(scan_error)?;
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

fn lone_cr_as_lf(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(if c == '\r' && chars.peek() != Some(&'\n') {
            '\n'
        } else {
            c
        });
    }
    out
}

fn scan_error(e: saphyr_parser::ScanError) -> Error {
    perr(format!(
        "{} at line {} column {}",
        e.info(),
        e.marker().line(),
        e.marker().col() + 1
    ))
}

/// Parses a (multi-document) YAML stream; every document must be a map (or empty).
pub fn parse(src: &str) -> Result<Vec<Map>> {
    // YAML reads a lone CR as a line break, but the comment scanner splits lines on LF only: a
    // comment would swallow the key after a lone CR. CR and LF are one char each, so spans hold.
    let lf_only;
    let src = if src.contains('\r') {
        lf_only = lone_cr_as_lf(src);
        lf_only.as_str()
    } else {
        src
    };
    let mut events = vec![];
    for ev in Parser::new_from_str(src) {
        let (e, span) = ev.map_err(scan_error)?;
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
            _ => Map::default(),
        })
        .collect())
}
