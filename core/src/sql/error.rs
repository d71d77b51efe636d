//! Errors of planning (`SqlError`). Execution errors are
//! [`crate::expr::ExecError`].

/// An error found while parsing or planning a statement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The text does not parse.
    #[error("{0}")]
    Syntax(String),
    /// Parsed, but not supported by cascade.
    #[error("{0}")]
    Unsupported(String),
    /// No such table.
    #[error("Table '{0}' doesn't exist")]
    UnknownTable(String),
    /// No such column.
    #[error("Unknown column '{name}' in '{clause}'")]
    UnknownColumn {
        /// Column as written.
        name: String,
        /// Where it was used.
        clause: &'static str,
    },
    /// A column name matches more than one input.
    #[error("Column '{0}' in field list is ambiguous")]
    Ambiguous(String),
    /// A non-aggregated column outside GROUP BY.
    #[error("Expression '{0}' of SELECT list is not in GROUP BY clause and contains nonaggregated column; this is incompatible with sql_mode=only_full_group_by")]
    NotGrouped(String),
    /// Wrong number of values.
    #[error("Column count doesn't match value count at row {0}")]
    ColumnCount(usize),
    /// Wrong arguments to a function.
    #[error("Incorrect parameter count in the call to native function '{0}'")]
    WrongArgs(String),
    /// An aggregate where none may be.
    #[error("Invalid use of group function")]
    InvalidGroupFunction,
    /// A bad value (a negative LIMIT, an unknown variable value, …).
    #[error("{0}")]
    InvalidValue(String),
    /// `@@name` of a variable that does not exist.
    #[error("Unknown system variable '{0}'")]
    UnknownVariable(String),
    /// UNION branches of different widths.
    #[error("The used SELECT statements have a different number of columns")]
    UnionArity,
    /// The statement nests deeper than the engine allows (see
    /// [`crate::sql::shape`]).
    #[error("The statement nests too deeply: at most {0} levels of nesting are allowed (parentheses, NOT, unary minus, IS / LIKE / IN chains, subqueries, function calls)")]
    TooDeep(usize),
    /// A SELECT joins more tables than the engine allows.
    #[error("Too many tables; cascade can only use {0} tables in a join")]
    TooManyTables(usize),
    /// Two columns of one name in CREATE TABLE.
    #[error("Duplicate column name '{0}'")]
    DuplicateColumn(String),
    /// CREATE TABLE without columns.
    #[error("A table must have at least 1 column")]
    NoColumns,
    /// Two PRIMARY KEYs in CREATE TABLE.
    #[error("Multiple primary key defined")]
    MultiplePrimaryKey,
    /// A key naming a column the table does not have.
    #[error("Key column '{0}' doesn't exist in table")]
    KeyColumn(String),
    /// `information_schema.<name>` of a table it does not have.
    #[error("Unknown table '{0}' in information_schema")]
    UnknownInformationSchemaTable(String),
    /// Two keys of one name.
    #[error("Duplicate key name '{0}'")]
    DuplicateKeyName(String),
    /// A prefix length on a column that is not text.
    #[error("Incorrect prefix key; the used key part isn't a string, the used length is longer than the key part, or the storage engine doesn't support unique prefix keys")]
    IncorrectPrefixKey,
    /// A DEFAULT its column cannot hold.
    #[error("Invalid default value for '{0}'")]
    InvalidDefault(String),
    /// A numeric literal beyond DOUBLE's range (`1e309`).
    #[error("Illegal double '{0}' value found during parsing")]
    IllegalDouble(String),
    /// A typed literal that is no such value (`DATE '2024-13-01'`).
    #[error("Incorrect {ty} value: '{value}'")]
    IncorrectValue {
        /// `DATE`, `DATETIME` or `TIME`.
        ty: &'static str,
        /// The text given.
        value: String,
    },
    /// `DELETE u FROM t`: the table to delete from is not in FROM.
    #[error("Unknown table '{0}' in MULTI DELETE")]
    UnknownTableInDelete(String),
    /// `AS t(a, b)` naming another number of columns than the source has.
    #[error("In definition of view, derived table or common table expression, SELECT list and column names list have different column counts")]
    DerivedColumnCount,
    /// A subquery (or row) has another number of columns than its place
    /// takes.
    #[error("Operand should contain {0} column(s)")]
    OperandColumns(usize),
    /// Two CTEs of one name in one `WITH`.
    #[error("Not unique table/alias: '{0}'")]
    NonUniqueTable(String),
    /// References to CTEs and views nested deeper than the planner allows
    /// (see [`crate::sql::plan::cte`]).
    #[error("The statement nests too deeply: at most {0} levels of common table expressions and views within each other are allowed")]
    ExpansionTooDeep(usize),
    /// More references to CTEs and views than one statement may expand.
    #[error("more than {0} references to common table expressions and views in one statement")]
    TooManyExpansions(usize),
    /// A recursive CTE that is not a UNION.
    #[error("Recursive Common Table Expression '{0}' should contain a UNION")]
    RecursiveNeedsUnion(String),
    /// A recursive CTE whose query blocks are not anchors first.
    #[error("Recursive Common Table Expression '{0}' should have one or more non-recursive query blocks followed by one or more recursive ones")]
    RecursiveAnchorsFirst(String),
    /// Aggregation or a window function in a recursive query block.
    #[error("Recursive Common Table Expression '{0}' can contain neither aggregation nor window functions in recursive query block")]
    RecursiveAggregation(String),
    /// A recursive query block that reads the CTE more than once.
    #[error("In recursive query block of Recursive Common Table Expression '{0}', the recursive table must be referenced only once, and not in any subquery")]
    RecursiveReferencedTwice(String),
    /// The recursive table on the right of a LEFT JOIN in a recursive
    /// query block.
    #[error("In recursive query block of Recursive Common Table Expression '{0}', the recursive table must neither be in the right argument of a LEFT JOIN, nor be forced to be non-first with join order hints")]
    RecursiveJoinOrder(String),
    /// A view that reaches itself (named `` `db`.`view` ``; one String
    /// keeps the error, which every planner frame holds, small).
    #[error("{0} contains view recursion")]
    ViewRecursion(String),
    /// A view whose tables or columns are gone (named `db.view`).
    #[error("View '{0}' references invalid table(s) or column(s) or function(s) or definer/invoker of view lack rights to use them")]
    InvalidView(String),
    /// An unqualified table name with no current database.
    #[error("No database selected")]
    NoDatabase,
    /// A window function error (3579–3595, 1210).
    #[error("{0}")]
    Window(#[from] super::plan::WindowError),
}

impl SqlError {
    /// MySQL code and SQLSTATE.
    pub fn codes(&self) -> (u16, &'static str) {
        match self {
            SqlError::Syntax(_) => (1064, "42000"),
            SqlError::Unsupported(_) => (1235, "42000"),
            SqlError::UnknownTable(_) => (1146, "42S02"),
            SqlError::UnknownColumn { .. } => (1054, "42S22"),
            SqlError::Ambiguous(_) => (1052, "23000"),
            SqlError::NotGrouped(_) => (1055, "42000"),
            SqlError::ColumnCount(_) => (1136, "21S01"),
            SqlError::WrongArgs(_) => (1582, "42000"),
            SqlError::InvalidGroupFunction => (1111, "HY000"),
            SqlError::InvalidValue(_) => (1231, "42000"),
            SqlError::UnionArity => (1222, "21000"),
            SqlError::IllegalDouble(_) => (1367, "22007"),
            SqlError::DuplicateColumn(_) => (1060, "42S21"),
            SqlError::NoColumns => (1113, "42000"),
            SqlError::MultiplePrimaryKey => (1068, "42000"),
            SqlError::KeyColumn(_) => (1072, "42000"),
            SqlError::DuplicateKeyName(_) => (1061, "42000"),
            SqlError::UnknownInformationSchemaTable(_) => (1109, "42S02"),
            SqlError::IncorrectPrefixKey => (1089, "HY000"),
            SqlError::InvalidDefault(_) => (1067, "42000"),
            SqlError::DerivedColumnCount => (1353, "HY000"),
            SqlError::IncorrectValue { .. } => (1525, "HY000"),
            SqlError::OperandColumns(_) => (1241, "21000"),
            SqlError::UnknownTableInDelete(_) => (1109, "42S02"),
            SqlError::UnknownVariable(_) => (1193, "HY000"),
            // MySQL's "thread stack overrun": what it answers when a
            // statement needs more stack than its thread has.
            SqlError::TooDeep(_) => (1436, "HY000"),
            SqlError::TooManyTables(_) => (1116, "HY000"),
            SqlError::NonUniqueTable(_) => (1066, "42000"),
            SqlError::ExpansionTooDeep(_) => (1436, "HY000"),
            SqlError::TooManyExpansions(_) => (1235, "42000"),
            SqlError::RecursiveNeedsUnion(_) => (3573, "HY000"),
            SqlError::RecursiveAnchorsFirst(_) => (3574, "HY000"),
            SqlError::RecursiveAggregation(_) => (3575, "HY000"),
            SqlError::RecursiveReferencedTwice(_) => (3577, "HY000"),
            SqlError::RecursiveJoinOrder(_) => (3576, "HY000"),
            SqlError::ViewRecursion(_) => (1462, "HY000"),
            SqlError::InvalidView(_) => (1356, "HY000"),
            SqlError::NoDatabase => (1046, "3D000"),
            SqlError::Window(w) => w.codes(),
        }
    }
}
