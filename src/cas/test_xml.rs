//! Tests only: reads a produced document back into a small tree with quick-xml's
//! reader, the way a client's parser sees it (XML 1.0 line-end normalisation,
//! entity and character references resolved), so tests check values, not bytes.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// All text directly inside, concatenated.
    pub text: String,
}

impl Element {
    /// The one child called `name`.
    pub fn child(&self, name: &str) -> &Element {
        let found = self.all(name);
        assert_eq!(found.len(), 1, "one {name} in {}", self.name);
        found[0]
    }

    pub fn all(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// No text beside child elements (no indentation), all the way down.
    pub fn assert_compact(&self) {
        if !self.children.is_empty() {
            assert_eq!(self.text, "", "text beside elements in {}", self.name);
        }
        self.children.iter().for_each(Element::assert_compact);
    }
}

fn open(start: &BytesStart) -> Element {
    let attributes = start
        .attributes()
        .map(|a| {
            let a = a.unwrap();
            let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
            let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
            (key, value.into_owned())
        })
        .collect();
    Element {
        name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
        attributes,
        ..Element::default()
    }
}

/// The root element; panics on anything a strict parser would refuse, on an XML
/// declaration, and on anything outside the root.
pub fn parse(xml: &str) -> Element {
    let mut reader = Reader::from_str(xml);
    let mut stack = vec![Element::default()];
    loop {
        match reader.read_event().unwrap() {
            Event::Start(start) => stack.push(open(&start)),
            Event::Empty(start) => stack.last_mut().unwrap().children.push(open(&start)),
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Text(text) => {
                let text = text.xml10_content().unwrap();
                stack.last_mut().unwrap().text.push_str(&text);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().unwrap();
                        resolve_predefined_entity(&name).unwrap().to_owned()
                    }
                };
                stack.last_mut().unwrap().text.push_str(&resolved);
            }
            Event::Eof => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut document = stack.pop().unwrap();
    assert!(stack.is_empty(), "unclosed elements");
    assert_eq!(document.text, "", "text outside the root");
    assert_eq!(document.children.len(), 1, "one root");
    document.children.remove(0)
}
