//! One field that failed validation: what request checks and an import's rows report.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// For a CSV import: the data row it is about (1 = the first row after the header).
    pub row: Option<u64>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
            row: None,
        }
    }

    pub fn at_row(mut self, row: u64) -> FieldError {
        self.row = Some(row);
        self
    }

    /// `amount`, or `row 3: amount` for an import row.
    pub fn label(&self) -> String {
        match self.row {
            Some(row) => format!("row {row}: {}", self.field),
            None => self.field.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_row_error_is_labelled_with_its_row() {
        assert_eq!(FieldError::new("amount", "x").label(), "amount");
        assert_eq!(
            FieldError::new("amount", "x").at_row(3).label(),
            "row 3: amount"
        );
    }
}
