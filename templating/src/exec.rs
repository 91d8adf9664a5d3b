//! Execution (exec.go): walks the tree with `missingkey=error`, within the run's budget.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use zeroize::Zeroizing;

use crate::budget::Budget;
use crate::funcs;
use crate::gofmt;
use crate::parse::{Arg, Command, Control, Node, Number, Pipe, Tree};
use crate::value::{Map, Value};
use crate::{Limits, TemplateError};

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'a> {
    tree: &'a Tree,
    out: Zeroizing<Vec<u8>>,
    vars: Vec<(String, Value)>,
    pub budget: Budget,
    depth: usize,
    line: usize,
}

pub(crate) fn execute(
    tree: &Tree,
    data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
    limits: Limits,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    let root = Value::Map(Rc::new(RefCell::new(Map {
        entries: data
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v.to_vec())))
            .collect(),
        string_values: true,
    })));
    let mut ex = Exec {
        tree,
        out: Zeroizing::new(Vec::new()),
        vars: vec![("$".into(), root.clone())],
        budget: Budget::new(limits),
        depth: 0,
        line: 1,
    };
    match ex.walk(&root, &tree.root) {
        Ok(_) => Ok(std::mem::take(&mut ex.out)),
        Err(msg) => Err(TemplateError(format!("line {}: {msg}", ex.line))),
    }
}

type R<T> = Result<T, String>;

impl Exec<'_> {
    fn write(&mut self, bytes: &[u8]) -> R<()> {
        self.budget
            .fits("output", self.out.len().saturating_add(bytes.len()))?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> R<Flow> {
        for node in nodes {
            self.budget.step(1)?;
            match node {
                Node::Text(t) => self.write(t)?,
                Node::Action(pipe) => {
                    self.line = pipe.line;
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        let mut buf = Zeroizing::new(Vec::new());
                        match v {
                            Value::Nil => buf.extend_from_slice(b"<no value>"),
                            other => gofmt::write_value(&mut buf, &other),
                        }
                        self.write(&buf)?;
                    }
                }
                Node::If(c) | Node::With(c) => {
                    let is_with = matches!(node, Node::With(_));
                    let mark = self.vars.len();
                    self.line = c.pipe.line;
                    let v = self.eval_pipeline(dot, &c.pipe)?;
                    let flow = if v.truth() {
                        if is_with {
                            self.walk(&v, &c.list)?
                        } else {
                            self.walk(dot, &c.list)?
                        }
                    } else if let Some(e) = &c.else_list {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(c) => {
                    let mark = self.vars.len();
                    let flow = self.walk_range(dot, c);
                    self.vars.truncate(mark);
                    flow?;
                }
                Node::Template { name, pipe } => {
                    let Some(body) = self.tree.defines.get(name) else {
                        return Err(format!("no such template {name:?}"));
                    };
                    let new_dot = match pipe {
                        Some(p) => self.eval_pipeline(dot, p)?,
                        None => Value::Nil,
                    };
                    self.depth += 1;
                    if self.depth > self.budget.limits.max_depth {
                        return Err(format!(
                            "template calls nested deeper than the limit of {}",
                            self.budget.limits.max_depth
                        ));
                    }
                    let saved =
                        std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                    let r = self.walk(&new_dot, body);
                    self.vars = saved;
                    self.depth -= 1;
                    r?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_range(&mut self, dot: &Value, c: &Control) -> R<()> {
        self.line = c.pipe.line;
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let mark = self.vars.len();
        let decl = c.pipe.decl.len();
        let iterate = |ex: &mut Self, index: Value, elem: Value| -> R<bool> {
            ex.budget.step(1)?;
            if decl > 0 {
                let top = ex.vars.len() - 1;
                ex.vars[top].1 = elem.clone();
            }
            if decl > 1 {
                let second = ex.vars.len() - 2;
                ex.vars[second].1 = index;
            }
            let flow = ex.walk(&elem, &c.list);
            ex.vars.truncate(mark);
            Ok(!matches!(flow?, Flow::Break))
        };
        let ran = match &val {
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !iterate(self, Value::Int(i as i64), item.clone())? {
                        break;
                    }
                }
                !items.is_empty()
            }
            Value::Map(m) => {
                // A snapshot: the body may change the map (Sprig's set).
                let entries: Vec<(String, Value)> = m
                    .borrow()
                    .entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (k, v) in &entries {
                    if !iterate(self, Value::str(k.as_bytes()), v.clone())? {
                        break;
                    }
                }
                !entries.is_empty()
            }
            Value::Int(n) | Value::Int64(n) => {
                // Go 1.22 ranges over integers.
                for i in 0..*n {
                    if !iterate(self, Value::Int(i), Value::Int(i))? {
                        break;
                    }
                }
                *n > 0
            }
            Value::Nil => false,
            other => return Err(format!("range can't iterate over a {}", other.type_name())),
        };
        if !ran && let Some(e) = &c.else_list {
            self.walk(dot, e)?;
        }
        Ok(())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            self.budget.step(1)?;
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.is_assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => return Err(format!("undefined variable: {name}")),
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn var(&self, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    fn not_a_function(args: &[Arg], final_: &Option<Value>) -> R<()> {
        if args.len() > 1 || final_.is_some() {
            return Err("can't give argument to non-function".into());
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, final_: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field(names) => self.eval_field_chain(dot, dot.clone(), names, &cmd.args, final_),
            Arg::Chain(inner, names) => {
                let receiver = self.eval_arg(dot, inner)?;
                self.eval_field_chain(dot, receiver, names, &cmd.args, final_)
            }
            Arg::Identifier(name) => self.eval_function(dot, name, &cmd.args[1..], final_),
            Arg::Pipe(p) => {
                Self::not_a_function(&cmd.args, &final_)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable(name, fields) => {
                let v = self.var(name)?;
                if fields.is_empty() {
                    Self::not_a_function(&cmd.args, &final_)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, fields, &cmd.args, final_)
            }
            Arg::Nil => Err("nil is not a command".into()),
            other => {
                Self::not_a_function(&cmd.args, &final_)?;
                self.eval_arg(dot, other)
            }
        }
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut receiver: Value,
        names: &[String],
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let has_args = args.len() > 1 || final_.is_some();
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            receiver = match receiver {
                Value::Nil => return Err(format!("nil data; no entry for key {name:?}")),
                Value::Map(m) => {
                    if last && has_args {
                        return Err(format!("{name} is not a method but has arguments"));
                    }
                    let found = m.borrow().entries.get(name).cloned();
                    match found {
                        Some(v) => v,
                        None => return Err(format!("map has no entry for key {name:?}")),
                    }
                }
                // A method with arguments: `(semver "1.2.3").LessThan $v`, `$t.Format "2006"`.
                Value::Object(o) if last && has_args => {
                    let mut values = Vec::with_capacity(args.len());
                    for a in &args[1..] {
                        values.push(self.eval_arg(dot, a)?);
                    }
                    values.extend(final_.clone());
                    funcs::call_method(&o, name, values, &mut self.budget)?
                }
                Value::Object(o) => match o.field(name) {
                    Some(v) => v,
                    None => {
                        return Err(format!(
                            "can't evaluate field {name} in type {}",
                            o.type_name()
                        ));
                    }
                },
                other => {
                    return Err(format!(
                        "can't evaluate field {name} in type {}",
                        other.type_name()
                    ));
                }
            };
        }
        Ok(receiver)
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> R<Value> {
        self.budget.step(1)?;
        match arg {
            Arg::Dot => Ok(dot.clone()),
            Arg::Nil => Ok(Value::Nil),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Number(n, text) => match n {
                Number::Int(i) => Ok(Value::Int(*i)),
                Number::Float(f) => Ok(Value::Float(*f)),
                Number::Overflow => Err(format!("{text} overflows int")),
            },
            Arg::Str(s) => Ok(Value::str(s.clone())),
            Arg::Field(names) => self.eval_field_chain(dot, dot.clone(), names, &[], None),
            Arg::Variable(name, fields) => {
                let v = self.var(name)?;
                self.eval_field_chain(dot, v, fields, &[], None)
            }
            Arg::Identifier(name) => self.eval_function(dot, name, &[], None),
            Arg::Pipe(p) => {
                self.depth += 1;
                if self.depth > self.budget.limits.max_depth {
                    return Err(format!(
                        "pipelines nested deeper than the limit of {}",
                        self.budget.limits.max_depth
                    ));
                }
                let r = self.eval_pipeline(dot, p);
                self.depth -= 1;
                r
            }
            Arg::Chain(inner, names) => {
                let receiver = self.eval_arg(dot, inner)?;
                self.eval_field_chain(dot, receiver, names, &[], None)
            }
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        if name == "and" || name == "or" {
            if args.is_empty() && final_.is_none() {
                return Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let want = name == "or";
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(dot, a)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = f;
            }
            return Ok(v);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for a in args {
            values.push(self.eval_arg(dot, a)?);
        }
        values.extend(final_);
        funcs::call(name, values, &mut self.budget)
    }
}
