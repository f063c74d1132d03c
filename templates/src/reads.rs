//! What of a user a campaign's templates read, so that a page's statement reads only that.

use minijinja::machinery::{Instruction, get_compiled_template};

use crate::Templates;

/// What of a user a campaign's templates read besides `id` and `email` (which every page
/// has): a page's statement reads only that much of each recipient.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFields {
    pub name: bool,
    pub locale: bool,
    pub timezone: bool,
    pub segments: bool,
    pub attrs: AttrsRead,
}

/// The attributes templates read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AttrsRead {
    /// These, by name (sorted, each once; none at all when empty).
    #[default]
    None,
    Named(Vec<String>),
    /// Every one: a template reads `user.attrs` (or `user`) as a whole.
    All,
}

impl UserFields {
    /// Everything a user has: what a preview, or a template that reads `user` whole, needs.
    pub fn all() -> Self {
        Self {
            name: true,
            locale: true,
            timezone: true,
            segments: true,
            attrs: AttrsRead::All,
        }
    }

    /// Take in a read of `user.FIELD`, and of `user.attrs.ATTR`; false for a field it
    /// cannot place, which reads the user whole.
    fn read(&mut self, field: &str, attr: Option<&str>) -> bool {
        match (field, attr) {
            ("id" | "email", _) => {}
            ("name", _) => self.name = true,
            ("locale", _) => self.locale = true,
            ("timezone", _) => self.timezone = true,
            ("segments", _) => self.segments = true,
            ("attrs", Some(attr)) => match &mut self.attrs {
                AttrsRead::All => {}
                AttrsRead::None => self.attrs = AttrsRead::Named(vec![attr.to_owned()]),
                AttrsRead::Named(names) => names.push(attr.to_owned()),
            },
            ("attrs", None) => self.attrs = AttrsRead::All,
            _ => return false,
        }
        true
    }
}

impl Templates {
    /// What of each user the templates read, for the statement that reads a page's users.
    pub fn user_fields(&self) -> &UserFields {
        &self.reads
    }

    /// Read from the compiled templates, where every read of `user` is a `Lookup("user")`
    /// and what follows it: `user.name` reads the name, `user.attrs.plan` one attribute,
    /// and any other use (`user` whole, `user.attrs[k]`, `user.attrs | items`) all it can
    /// reach. A template that assigns a name `user` of its own (`set`, `with`, a loop or a
    /// macro's argument) or dumps its context (`debug()`) reads everything. The compiled
    /// form, not MiniJinja's analysis of the source, which misses names inside slices
    /// (`user.name[:1]`) and the filters of filter and `set` blocks.
    pub(crate) fn read_fields(&self) -> UserFields {
        let mut fields = UserFields::default();
        for &field in &self.templated {
            let template = self.template(field);
            let compiled = get_compiled_template(&template);
            let streams = std::iter::once(&compiled.instructions).chain(compiled.blocks.values());
            for instructions in streams {
                let name_at = |i: u32| match instructions.get(i) {
                    Some(Instruction::GetAttr(name)) => Some(*name),
                    _ => None,
                };
                let mut i = 0;
                while let Some(instruction) = instructions.get(i) {
                    match instruction {
                        Instruction::Lookup("user") => {
                            let Some(name) = name_at(i + 1) else {
                                return UserFields::all();
                            };
                            let attr = name_at(i + 2).filter(|_| name == "attrs");
                            if !fields.read(name, attr) {
                                return UserFields::all();
                            }
                        }
                        Instruction::StoreLocal("user") | Instruction::CallFunction("debug", _) => {
                            return UserFields::all();
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
        if let AttrsRead::Named(names) = &mut fields.attrs {
            names.sort();
            names.dedup();
        }
        fields
    }
}
