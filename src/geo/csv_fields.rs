//! Splitting one CSV line of the operator's overrides or of a geofeed into
//! fields: commas, double-quoted fields with `""` escapes, blanks around
//! fields trimmed. Errors carry the column at fault so each caller names
//! its own field.

/// Splits a CSV line into trimmed fields. With `rest_from`, the unquoted
/// field of that column runs to the end of the line, commas included (the
/// overrides' free-text note). An error carries the column index at fault.
pub(super) fn split_fields(
    line: &str,
    rest_from: Option<usize>,
) -> Result<Vec<String>, (usize, String)> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let column = fields.len();
        let mut field = String::new();
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err((column, "a quoted field is not closed".to_string())),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    break;
                }
                Some(',') => fields.push(field),
                Some(c) => {
                    return Err((column, format!("unexpected `{c}` after a quoted field")));
                }
            }
        } else if Some(column) == rest_from {
            // The last field: the rest of the line, commas included.
            fields.push(chars.by_ref().collect::<String>().trim().to_string());
            break;
        } else {
            let mut ended = true;
            for c in chars.by_ref() {
                if c == ',' {
                    ended = false;
                    break;
                }
                field.push(c);
            }
            fields.push(field.trim().to_string());
            if ended {
                break;
            }
        }
    }
    Ok(fields)
}
