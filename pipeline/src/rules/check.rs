//! Checking a rule's expression at load, before it ever runs.
//!
//! The checker walks the parsed expression against the variable tree of
//! [`RuleInput`](super::RuleInput) and refuses, with the position in the expression:
//! - an unknown variable, or an unknown member (`identity.k8s.src_namspace`);
//! - an operator or function applied to types it does not take
//!   (`dst_port == "5432"`, `dst_port.startsWith("5")`), or a function
//!   that does not exist or that the evaluator lacks;
//! - a `matches()` pattern that is not valid RE2 syntax (when written as a
//!   literal);
//! - a message literal (`Foo{}`) or an optional (`a.?b`): nothing of ours
//!   has them.
//!
//! And, so that a rule that loads cannot exhaust the daemon at run time,
//! limits on the expression's text, its nodes, its nesting, its literals
//! and its comprehensions (the `all`, `exists`, `exists_one`, `map` and
//! `filter` macros): every evaluation is then bounded by the limits and
//! the sizes of one edge's facts. The variables these macros bind are in
//! scope inside them.
//!
//! `dyn` values (`dyn(x)`) pass every check, as in CEL.

use cel::common::ast::{EntryExpr, Expr, LiteralValue, operators};
use cel::parser::Expression;

/// The longest expression, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 4_096;
/// The most nodes of one expression.
pub const MAX_NODES: usize = 1_000;
/// The deepest nesting of one expression.
pub const MAX_DEPTH: usize = 48;
/// The most elements of a list or map literal.
pub const MAX_LITERAL_ELEMENTS: usize = 256;
/// The longest string or bytes literal.
pub const MAX_LITERAL_BYTES: usize = 1_024;
/// The deepest nesting of comprehensions (`all`, `exists`, ...).
pub const MAX_COMPREHENSION_DEPTH: usize = 2;

/// A type as the checker knows it.
#[derive(Debug, Clone)]
pub(super) enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// An object of the variable tree: its path and its members.
    Object(
        &'static str,
        fn(&str) -> Option<Ty>,
        &'static [&'static str],
    ),
    Dyn,
}

impl Ty {
    pub(super) fn name(&self) -> String {
        match self {
            Self::Bool => "bool".to_owned(),
            Self::Int => "int".to_owned(),
            Self::Uint => "uint".to_owned(),
            Self::Double => "double".to_owned(),
            Self::String => "string".to_owned(),
            Self::Bytes => "bytes".to_owned(),
            Self::Null => "null".to_owned(),
            Self::List(t) => format!("list({})", t.name()),
            Self::Map(k, v) => format!("map({}, {})", k.name(), v.name()),
            Self::Object(path, _, _) => format!("the object {path}"),
            Self::Dyn => "dyn".to_owned(),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Self::Int | Self::Uint | Self::Double | Self::Dyn)
    }

    /// Whether a value of `self` may be compared with one of `other`
    /// (numbers with numbers, as CEL's heterogeneous equality allows).
    fn comparable(&self, other: &Ty) -> bool {
        use Ty::{Bool, Bytes, Dyn, List, Map, Null, Object, String};
        match (self, other) {
            (Dyn | Null, _) | (_, Dyn | Null) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (Bool, Bool) | (String, String) | (Bytes, Bytes) => true,
            (List(a), List(b)) => a.comparable(b),
            (Map(ak, av), Map(bk, bv)) => ak.comparable(bk) && av.comparable(bv),
            (Object(a, _, _), Object(b, _, _)) => a == b,
            _ => false,
        }
    }

    /// The type both branches (or list elements) share, else dyn.
    fn join(self, other: &Ty) -> Ty {
        if std::mem::discriminant(&self) == std::mem::discriminant(other)
            && !matches!(self, Ty::List(_) | Ty::Map(..) | Ty::Object(..))
        {
            self
        } else {
            Ty::Dyn
        }
    }
}

/// Where an expression went wrong: a byte offset into it and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// The byte offset of the offending part, when the parser kept it.
    pub offset: Option<u32>,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "at column {}: {}", offset + 1, self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

/// The limits on the text, checked before it is parsed: its length, and
/// the nesting of brackets (the parser recurses on them).
///
/// # Errors
/// [`CheckError`] naming the limit.
pub fn check_text(text: &str) -> Result<(), CheckError> {
    if text.len() > MAX_EXPRESSION_BYTES {
        return Err(CheckError {
            offset: None,
            problem: format!(
                "the expression has {} bytes, more than the {MAX_EXPRESSION_BYTES} allowed",
                text.len()
            ),
        });
    }
    let mut depth = 0usize;
    for (at, byte) in text.bytes().enumerate() {
        match byte {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_DEPTH {
            return Err(CheckError {
                offset: u32::try_from(at).ok(),
                problem: format!("brackets nest deeper than {MAX_DEPTH}"),
            });
        }
    }
    Ok(())
}

/// Checks a parsed expression (see the module docs); `root` types the
/// variables, `offset` says where a node was written. The expression's
/// type.
pub(super) fn check(
    expression: &Expression,
    root: fn(&str) -> Option<Ty>,
    offset: &dyn Fn(u64) -> Option<u32>,
) -> Result<Ty, CheckError> {
    let mut checker = Checker {
        root,
        offset,
        scopes: Vec::new(),
        nodes: 0,
        comprehensions: 0,
    };
    checker.expr(expression, 0)
}

struct Checker<'a> {
    root: fn(&str) -> Option<Ty>,
    offset: &'a dyn Fn(u64) -> Option<u32>,
    /// Variables bound by the comprehensions around the current node.
    scopes: Vec<(String, Ty)>,
    nodes: usize,
    comprehensions: usize,
}

impl Checker<'_> {
    fn fail(&self, at: &Expression, problem: impl Into<String>) -> CheckError {
        CheckError {
            offset: (self.offset)(at.id),
            problem: problem.into(),
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per kind of expression, read as a table"
    )]
    fn expr(&mut self, e: &Expression, depth: usize) -> Result<Ty, CheckError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.fail(e, format!("the expression has more than {MAX_NODES} parts")));
        }
        if depth > MAX_DEPTH {
            return Err(self.fail(e, format!("the expression nests deeper than {MAX_DEPTH}")));
        }
        let depth = depth + 1;
        match &e.expr {
            Expr::Unspecified => Err(self.fail(e, "an empty expression")),
            Expr::Literal(literal) => self.literal(e, literal),
            Expr::Ident(name) => self.ident(e, name),
            Expr::Select(select) => {
                let operand = self.expr(&select.operand, depth)?;
                let member = self.member(e, &select.operand, &operand, &select.field)?;
                Ok(if select.test { Ty::Bool } else { member })
            }
            Expr::List(list) => {
                if list.elements.len() > MAX_LITERAL_ELEMENTS {
                    return Err(self.fail(
                        e,
                        format!("a list literal has more than {MAX_LITERAL_ELEMENTS} elements"),
                    ));
                }
                if !list.optional_indices.is_empty() {
                    return Err(self.fail(e, "optional list elements are not supported"));
                }
                let mut element: Option<Ty> = None;
                for item in &list.elements {
                    let ty = self.expr(item, depth)?;
                    element = Some(match element {
                        None => ty,
                        Some(before) => before.join(&ty),
                    });
                }
                Ok(Ty::List(Box::new(element.unwrap_or(Ty::Dyn))))
            }
            Expr::Map(map) => {
                if map.entries.len() > MAX_LITERAL_ELEMENTS {
                    return Err(self.fail(
                        e,
                        format!("a map literal has more than {MAX_LITERAL_ELEMENTS} entries"),
                    ));
                }
                let (mut key, mut value): (Option<Ty>, Option<Ty>) = (None, None);
                for entry in &map.entries {
                    let EntryExpr::MapEntry(entry) = &entry.expr else {
                        return Err(self.fail(e, "a message field in a map literal"));
                    };
                    if entry.optional {
                        return Err(self.fail(e, "optional map entries are not supported"));
                    }
                    let k = self.expr(&entry.key, depth)?;
                    let v = self.expr(&entry.value, depth)?;
                    key = Some(key.map_or(k.clone(), |before| before.join(&k)));
                    value = Some(value.map_or(v.clone(), |before| before.join(&v)));
                }
                Ok(Ty::Map(
                    Box::new(key.unwrap_or(Ty::Dyn)),
                    Box::new(value.unwrap_or(Ty::Dyn)),
                ))
            }
            Expr::Struct(_) => Err(self.fail(e, "message literals are not supported")),
            Expr::Comprehension(c) => {
                self.comprehensions += 1;
                if self.comprehensions > MAX_COMPREHENSION_DEPTH {
                    return Err(self.fail(
                        e,
                        format!(
                            "macros (all, exists, map, filter) nest deeper than {MAX_COMPREHENSION_DEPTH}"
                        ),
                    ));
                }
                let range = self.expr(&c.iter_range, depth)?;
                // One variable: a list's element or a map's key; two: index
                // and element, or key and value.
                let (one, two) = match range {
                    Ty::List(element) => ((*element).clone(), (Ty::Int, *element)),
                    Ty::Map(key, value) => ((*key).clone(), (*key, *value)),
                    Ty::Dyn => (Ty::Dyn, (Ty::Dyn, Ty::Dyn)),
                    other => {
                        return Err(
                            self.fail(&c.iter_range, format!("cannot range over {}", other.name()))
                        );
                    }
                };
                let bound = match &c.iter_var2 {
                    Some(second) => vec![(c.iter_var.clone(), two.0), (second.clone(), two.1)],
                    None => vec![(c.iter_var.clone(), one)],
                };
                let accu = self.expr(&c.accu_init, depth)?;
                let scope = self.scopes.len();
                self.scopes.extend(bound);
                self.scopes.push((c.accu_var.clone(), accu));
                let checked = (|| {
                    self.expr(&c.loop_cond, depth)?;
                    let step = self.expr(&c.loop_step, depth)?;
                    // The accumulator takes the step's type (map, filter).
                    if let Some(last) = self.scopes.last_mut() {
                        last.1 = step;
                    }
                    self.expr(&c.result, depth)
                })();
                self.scopes.truncate(scope);
                self.comprehensions -= 1;
                checked
            }
            Expr::Call(call) => self.call(e, call, depth),
        }
    }

    fn literal(&self, e: &Expression, literal: &LiteralValue) -> Result<Ty, CheckError> {
        let long = |n: usize| n > MAX_LITERAL_BYTES;
        Ok(match literal {
            LiteralValue::Boolean(_) => Ty::Bool,
            LiteralValue::Int(_) => Ty::Int,
            LiteralValue::UInt(_) => Ty::Uint,
            LiteralValue::Double(_) => Ty::Double,
            LiteralValue::Null => Ty::Null,
            LiteralValue::String(s) => {
                if long(s.len()) {
                    return Err(self.fail(
                        e,
                        format!("a string literal is longer than {MAX_LITERAL_BYTES} bytes"),
                    ));
                }
                Ty::String
            }
            LiteralValue::Bytes(b) => {
                if long(b.len()) {
                    return Err(self.fail(
                        e,
                        format!("a bytes literal is longer than {MAX_LITERAL_BYTES} bytes"),
                    ));
                }
                Ty::Bytes
            }
        })
    }

    fn ident(&self, e: &Expression, name: &str) -> Result<Ty, CheckError> {
        if let Some((_, ty)) = self.scopes.iter().rev().find(|(bound, _)| bound == name) {
            return Ok(ty.clone());
        }
        (self.root)(name).ok_or_else(|| {
            self.fail(
                e,
                format!(
                    "unknown variable {name:?} (known: {})",
                    super::input::VARIABLES.join(", ")
                ),
            )
        })
    }

    fn member(
        &self,
        e: &Expression,
        operand_expr: &Expression,
        operand: &Ty,
        field: &str,
    ) -> Result<Ty, CheckError> {
        match operand {
            Ty::Object(path, members, names) => members(field).ok_or_else(|| {
                self.fail(
                    e,
                    format!(
                        "{path} has no member {field:?} (members: {})",
                        names.join(", ")
                    ),
                )
            }),
            Ty::Map(key, value) if matches!(**key, Ty::String | Ty::Dyn) => Ok((**value).clone()),
            Ty::Dyn => Ok(Ty::Dyn),
            other => Err(self.fail(
                operand_expr,
                format!("{} has no member {field:?}", other.name()),
            )),
        }
    }

    #[expect(
        clippy::too_many_lines,
        clippy::many_single_char_names,
        reason = "one arm per operator or function, read as a table; a and b are its operands"
    )]
    fn call(
        &mut self,
        e: &Expression,
        call: &cel::common::ast::CallExpr,
        depth: usize,
    ) -> Result<Ty, CheckError> {
        let target = match &call.target {
            Some(target) => Some(self.expr(target, depth)?),
            None => None,
        };
        let mut args = Vec::with_capacity(call.args.len());
        for arg in &call.args {
            args.push(self.expr(arg, depth)?);
        }
        let name = call.func_name.as_str();
        let wrong = |what: &str| -> CheckError {
            let types: Vec<String> = target.iter().chain(&args).map(Ty::name).collect();
            self.fail(e, format!("{what} cannot take ({})", types.join(", ")))
        };
        let bool_like = |t: &Ty| matches!(t, Ty::Bool | Ty::Dyn);
        match (name, target.as_ref(), args.as_slice()) {
            (operators::LOGICAL_AND | operators::LOGICAL_OR, None, [a, b]) => {
                if bool_like(a) && bool_like(b) {
                    Ok(Ty::Bool)
                } else {
                    Err(wrong(if name == operators::LOGICAL_AND {
                        "&&"
                    } else {
                        "||"
                    }))
                }
            }
            (operators::LOGICAL_NOT | operators::NOT_STRICTLY_FALSE, None, [a]) => {
                if bool_like(a) {
                    Ok(Ty::Bool)
                } else {
                    Err(wrong("!"))
                }
            }
            (operators::CONDITIONAL, None, [c, a, b]) => {
                if bool_like(c) {
                    Ok(a.clone().join(b))
                } else {
                    Err(wrong("?:"))
                }
            }
            (operators::EQUALS | operators::NOT_EQUALS, None, [a, b]) => {
                if a.comparable(b) {
                    Ok(Ty::Bool)
                } else {
                    Err(wrong(if name == operators::EQUALS {
                        "=="
                    } else {
                        "!="
                    }))
                }
            }
            (
                operators::LESS
                | operators::LESS_EQUALS
                | operators::GREATER
                | operators::GREATER_EQUALS,
                None,
                [a, b],
            ) => {
                let ordered = (a.is_numeric() && b.is_numeric())
                    || matches!(
                        (a, b),
                        (Ty::String | Ty::Dyn, Ty::String | Ty::Dyn)
                            | (Ty::Bytes | Ty::Dyn, Ty::Bytes | Ty::Dyn)
                            | (Ty::Bool | Ty::Dyn, Ty::Bool | Ty::Dyn)
                    );
                if ordered {
                    Ok(Ty::Bool)
                } else {
                    Err(wrong("a comparison"))
                }
            }
            (operators::ADD, None, [a, b]) => match (a, b) {
                (Ty::Dyn, t) | (t, Ty::Dyn) => Ok(t.clone()),
                (Ty::String, Ty::String) => Ok(Ty::String),
                (Ty::Bytes, Ty::Bytes) => Ok(Ty::Bytes),
                (Ty::List(x), Ty::List(y)) => Ok(Ty::List(Box::new((**x).clone().join(y)))),
                (Ty::Int, Ty::Int) => Ok(Ty::Int),
                (Ty::Uint, Ty::Uint) => Ok(Ty::Uint),
                (Ty::Double, Ty::Double) => Ok(Ty::Double),
                _ => Err(wrong("+")),
            },
            (
                operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE | operators::MODULO,
                None,
                [a, b],
            ) => match (a, b) {
                (Ty::Dyn, t) | (t, Ty::Dyn) if t.is_numeric() => Ok(t.clone()),
                (Ty::Int, Ty::Int) => Ok(Ty::Int),
                (Ty::Uint, Ty::Uint) => Ok(Ty::Uint),
                (Ty::Double, Ty::Double) if name != operators::MODULO => Ok(Ty::Double),
                _ => Err(wrong("arithmetic")),
            },
            (operators::NEGATE, None, [a]) => match a {
                Ty::Int | Ty::Double | Ty::Dyn => Ok(a.clone()),
                _ => Err(wrong("-")),
            },
            (operators::INDEX, None, [container, index]) => match container {
                Ty::List(element) if matches!(index, Ty::Int | Ty::Uint | Ty::Dyn) => {
                    Ok((**element).clone())
                }
                Ty::Map(key, value) if key.comparable(index) => Ok((**value).clone()),
                Ty::Object(..) if matches!(index, Ty::String) => {
                    Err(self.fail(e, "index an object with a member: a.b, not a[\"b\"]"))
                }
                Ty::Dyn => Ok(Ty::Dyn),
                _ => Err(wrong("[]")),
            },
            (operators::IN, None, [item, container]) => match container {
                Ty::List(element) if item.comparable(element) => Ok(Ty::Bool),
                Ty::Map(key, _) if item.comparable(key) => Ok(Ty::Bool),
                Ty::Dyn => Ok(Ty::Bool),
                _ => Err(wrong("in")),
            },
            ("size", Some(t), []) | ("size", None, [t]) => match t {
                Ty::String | Ty::Bytes | Ty::List(_) | Ty::Map(..) | Ty::Dyn => Ok(Ty::Int),
                _ => Err(wrong("size")),
            },
            ("contains" | "startsWith" | "endsWith", Some(t), [a]) => {
                if matches!(t, Ty::String | Ty::Dyn) && matches!(a, Ty::String | Ty::Dyn) {
                    Ok(Ty::Bool)
                } else {
                    Err(wrong(name))
                }
            }
            ("matches", Some(t), [a]) | ("matches", None, [t, a]) => {
                if !(matches!(t, Ty::String | Ty::Dyn) && matches!(a, Ty::String | Ty::Dyn)) {
                    return Err(wrong("matches"));
                }
                let pattern = call.args.last().map(|p| &p.expr);
                if let Some(Expr::Literal(LiteralValue::String(pattern))) = pattern
                    && let Err(error) = regex::Regex::new(pattern)
                {
                    return Err(self.fail(e, format!("matches(): not a valid pattern: {error}")));
                }
                Ok(Ty::Bool)
            }
            ("int", None, [t]) => match t {
                Ty::Int | Ty::Uint | Ty::Double | Ty::String | Ty::Dyn => Ok(Ty::Int),
                _ => Err(wrong("int")),
            },
            ("uint", None, [t]) => match t {
                Ty::Int | Ty::Uint | Ty::Double | Ty::String | Ty::Dyn => Ok(Ty::Uint),
                _ => Err(wrong("uint")),
            },
            ("double", None, [t]) => match t {
                Ty::Int | Ty::Uint | Ty::Double | Ty::String | Ty::Dyn => Ok(Ty::Double),
                _ => Err(wrong("double")),
            },
            ("string", None, [t]) => match t {
                Ty::Object(..) | Ty::List(_) | Ty::Map(..) | Ty::Null => Err(wrong("string")),
                _ => Ok(Ty::String),
            },
            ("bool", None, [t]) => match t {
                Ty::Bool | Ty::String | Ty::Dyn => Ok(Ty::Bool),
                _ => Err(wrong("bool")),
            },
            ("dyn", None, [_]) => Ok(Ty::Dyn),
            ("inCidr", Some(t), [a]) | ("inCidr", None, [t, a]) => {
                if !(matches!(t, Ty::String | Ty::Dyn) && matches!(a, Ty::String | Ty::Dyn)) {
                    return Err(wrong("inCidr"));
                }
                let block = call.args.last().map(|b| &b.expr);
                if let Some(Expr::Literal(LiteralValue::String(block))) = block
                    && block.parse::<ipnet::IpNet>().is_err()
                {
                    return Err(self.fail(e, format!("inCidr(): {block:?} is not a CIDR")));
                }
                Ok(Ty::Bool)
            }
            ("max" | "min", None, args) if !args.is_empty() && args.iter().all(Ty::is_numeric) => {
                Ok(args[0].clone())
            }
            _ => {
                let known = [
                    "size",
                    "contains",
                    "startsWith",
                    "endsWith",
                    "matches",
                    "int",
                    "uint",
                    "double",
                    "string",
                    "bool",
                    "dyn",
                    "max",
                    "min",
                    "inCidr",
                    "has",
                    "all",
                    "exists",
                    "exists_one",
                    "map",
                    "filter",
                ];
                if name.starts_with('_') || name.starts_with('@') || known.contains(&name) {
                    Err(wrong(name.trim_matches(|c| c == '_' || c == '@')))
                } else {
                    Err(self.fail(
                        e,
                        format!("unknown function {name:?} (known: {})", known.join(", ")),
                    ))
                }
            }
        }
    }
}
