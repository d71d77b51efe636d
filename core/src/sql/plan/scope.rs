//! Scopes: the columns an expression can see, and name resolution.

use sqlparser::ast;

use crate::data::DataType;
use crate::sql::error::SqlError;
use crate::storage::Table;

#[derive(Clone, Debug)]
pub(super) struct ScopeCol {
    pub(super) qualifier: Option<String>,
    pub(super) name: String,
    pub(super) ty: DataType,
}

/// Columns visible to an expression.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub(super) cols: Vec<ScopeCol>,
}

impl Scope {
    pub(super) fn types(&self) -> Vec<DataType> {
        self.cols.iter().map(|c| c.ty).collect()
    }
    pub(super) fn names(&self) -> Vec<String> {
        self.cols.iter().map(|c| c.name.clone()).collect()
    }
    pub(super) fn with_qualifier(mut self, q: &str) -> Scope {
        for c in &mut self.cols {
            c.qualifier = Some(q.to_lowercase());
        }
        self
    }
    /// Scope over a table's columns.
    pub fn of_table(table: &Table, qualifier: &str) -> Scope {
        Scope {
            cols: table
                .schema
                .columns
                .iter()
                .map(|c| ScopeCol {
                    qualifier: Some(qualifier.to_lowercase()),
                    name: c.name.clone(),
                    ty: c.ty,
                })
                .collect(),
        }
    }
    pub(super) fn resolve(
        &self,
        parts: &[ast::Ident],
        clause: &'static str,
    ) -> Result<usize, SqlError> {
        let (q, n) = match parts {
            [n] => (None, n.value.to_lowercase()),
            [.., q, n] => (Some(q.value.to_lowercase()), n.value.to_lowercase()),
            [] => return Err(SqlError::Syntax("empty identifier".into())),
        };
        let mut hits = self.cols.iter().enumerate().filter(|(_, c)| {
            c.name.to_lowercase() == n
                && q.as_ref()
                    .is_none_or(|q| c.qualifier.as_deref() == Some(q.as_str()))
        });
        let display = parts
            .iter()
            .map(|p| p.value.clone())
            .collect::<Vec<_>>()
            .join(".");
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Ok(i),
            (Some(_), Some(_)) => Err(SqlError::Ambiguous(display)),
            (None, _) => Err(SqlError::UnknownColumn {
                name: display,
                clause,
            }),
        }
    }
}
