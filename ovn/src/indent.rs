//! The indentation tree shared by `ovn-trace --detailed` and
//! `ovs-appctl ofproto/trace`: both tools print a node tree where a node's
//! children are indented deeper, except the last child of a chain, which is
//! printed at its parent's level (so a long pipeline stays flat). Titles are
//! lines underlined with dashes (`ingress(...)` / `bridge("br-int")`).

/// One printed node: its text, whether it was underlined, and the lines
/// printed under it (deeper indentation, or for a title, everything that
/// follows at its own level until the next title at that level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node<'a> {
    pub indent: usize,
    pub text: &'a str,
    pub title: bool,
    pub children: Vec<Node<'a>>,
}

struct Line<'a> {
    indent: usize,
    text: &'a str,
    title: bool,
}

/// Deeper nesting than this is flattened, so hostile input cannot exhaust
/// the stack; real traces nest a few dozen levels at most.
const MAX_DEPTH: usize = 256;

fn is_rule(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b == b'-')
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn lines(input: &str) -> Vec<Line<'_>> {
    let raw: Vec<&str> = input
        .lines()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let line = raw[i];
        let indent = indent_of(line);
        let text = &line[indent..];
        let underlined = raw
            .get(i + 1)
            .is_some_and(|next| indent_of(next) == indent && is_rule(next.trim_start()));
        if is_rule(text) {
            // a stray rule (e.g. under a very long LOG line that wrapped) carries no content
            i += 1;
            continue;
        }
        out.push(Line {
            indent,
            text,
            title: underlined,
        });
        i += if underlined { 2 } else { 1 };
    }
    out
}

/// Parses `input` into the printed tree.
pub(crate) fn parse(input: &str) -> Vec<Node<'_>> {
    let lines = lines(input);
    let mut pos = 0;
    let mut out = Vec::new();
    // the outer loop guards against a first line that is less indented than a
    // later one at the top level: everything is consumed eventually
    while pos < lines.len() {
        out.extend(seq(&lines, &mut pos, 0, 0));
    }
    out
}

fn seq<'a>(lines: &[Line<'a>], pos: &mut usize, base: usize, depth: usize) -> Vec<Node<'a>> {
    let mut out = Vec::new();
    while let Some(line) = lines.get(*pos) {
        if line.indent < base {
            break;
        }
        *pos += 1;
        out.push(node(lines, pos, line, depth));
    }
    out
}

fn node<'a>(lines: &[Line<'a>], pos: &mut usize, line: &Line<'a>, depth: usize) -> Node<'a> {
    let mut children = Vec::new();
    if depth < MAX_DEPTH {
        if line.title {
            // a section owns what follows at its own level up to the next title
            while let Some(next) = lines.get(*pos) {
                if next.indent < line.indent || (next.title && next.indent <= line.indent) {
                    break;
                }
                *pos += 1;
                children.push(node(lines, pos, next, depth + 1));
            }
        } else {
            children = seq(lines, pos, line.indent + 1, depth + 1);
        }
    }
    Node {
        indent: line.indent,
        text: line.text,
        title: line.title,
        children,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_own_their_level_and_deeper_lines_nest() {
        let text = "a\n-\n 0. x\n    y\n        z\n 1. w\nb\n-\n 2. v\n";
        let tree = parse(text);
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].text, "a");
        assert_eq!(tree[0].children.len(), 2);
        assert_eq!(tree[0].children[0].children[0].text, "y");
        assert_eq!(tree[0].children[0].children[0].children[0].text, "z");
        assert_eq!(tree[1].children[0].text, "2. v");
    }

    #[test]
    fn deep_nesting_does_not_recurse_forever() {
        let text: String = (0..5000).map(|i| format!("{}x\n", " ".repeat(i))).collect();
        let tree = parse(&text);
        assert!(!tree.is_empty());
    }
}
