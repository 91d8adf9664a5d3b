//! Comments, which serde-based YAML libraries drop: a lexical pass finds them, then each is
//! placed on the node go-yaml would attach it to.

use saphyr_parser::ScalarStyle;

use super::node::{PKind, PNode, Pos};

/// Index just past the closing quote of the quoted scalar opening at `start`.
pub(super) fn quoted_end(chars: &[char], start: usize, style: ScalarStyle) -> Option<usize> {
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

pub(super) struct Comment {
    pub(super) pos: Pos,
    pub(super) text: String,
    /// Trails content on its line (`key: value # text`).
    pub(super) inline: bool,
    /// Indented deeper than the next content line: it ends the blocks above it, and go-yaml
    /// keeps it with the deepest of them.
    pub(super) foot: bool,
    /// Less indented than the next content line: go-yaml makes it a head comment of what
    /// follows, however little it is indented.
    pub(super) head_of_next: bool,
    /// Nothing but comments follows: a foot comment of the whole document.
    pub(super) at_end: bool,
}

/// Finds comments: `#` at line start or after whitespace, outside quoted and block scalars.
pub(super) fn scan_comments(src: &str, excluded: &[(usize, usize)]) -> Vec<Comment> {
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
pub(super) fn child_col(n: &PNode) -> Option<usize> {
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
pub(super) fn place_before_next(node: &mut PNode, c: &Comment) -> bool {
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

pub(super) fn covers(n: &PNode, c: &Comment) -> bool {
    n.flow
        && !matches!(n.kind, PKind::Scalar(_) | PKind::Alias(_))
        && n.start.line <= c.pos.line
        && c.pos.line <= n.end_line
}

/// Places one comment in the deepest block container whose region holds it and whose
/// children are not indented deeper than the comment.
pub(super) fn place_comment(node: &mut PNode, c: &Comment, end: Option<Pos>) {
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
