//! The parsed YAML tree as parsing builds it and comment placement annotates it: positions,
//! node kinds, and the comments attached before each child.

use crate::value::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) col: usize,
}

#[derive(Clone, Debug)]
pub(super) enum PKind {
    Scalar(Value),
    /// Entries: key text, key start, value.
    Map(Vec<(String, Pos, PNode)>),
    Seq(Vec<PNode>),
    /// An alias, expanded once comments are placed so that copies carry the anchored node's
    /// comments too (as go-yaml's shared nodes do).
    Alias(usize),
}

#[derive(Clone, Debug)]
pub(super) struct PNode {
    pub(super) start: Pos,
    /// Anchor id (0: none).
    pub(super) anchor: usize,
    /// Line of the closing event (for flow collections: the line of `]` or `}`).
    pub(super) end_line: usize,
    pub(super) flow: bool,
    pub(super) kind: PKind,
    /// Comments placed before child index `usize` (== len means at the end).
    pub(super) comments: Vec<(usize, String)>,
}
