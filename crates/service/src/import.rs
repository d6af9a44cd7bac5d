//! CSV import: maps the usual CRM export headers to profile fields and validates every row,
//! naming each bad row by line and field, never by value. Storing is the caller's (the CLI's).

use steward_domain::{
    Address, AddressInput, CustomerInput, NewCustomer, ProfileField, ValidationError,
};

/// The profile field a CSV column feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    /// A field whose declaration names this header (`ProfileField::import_headers`).
    Profile(ProfileField),
    /// Parts the usual exports split: a name in two, an address in four.
    First,
    Last,
    Street,
    City,
    PostalCode,
    Country,
}

/// Maps the usual CRM export headers (Salesforce, HubSpot, Zoho, Pipedrive, Google contacts…)
/// to profile fields; case, spaces, dashes and underscores are ignored.
fn column_for(header: &str) -> Option<Column> {
    let h: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let part = match h.as_str() {
        "firstname" | "givenname" | "forename" => Some(Column::First),
        "lastname" | "surname" | "familyname" => Some(Column::Last),
        "street" | "address" | "streetaddress" | "address1" | "addressline1" | "mailingstreet"
        | "billingstreet" => Some(Column::Street),
        "city" | "town" | "mailingcity" | "billingcity" => Some(Column::City),
        "postalcode"
        | "postcode"
        | "zip"
        | "zipcode"
        | "mailingpostalcode"
        | "mailingzippostalcode"
        | "billingpostalcode" => Some(Column::PostalCode),
        "country" | "countryregion" | "mailingcountry" | "billingcountry" => Some(Column::Country),
        _ => None,
    };
    part.or_else(|| {
        ProfileField::ALL
            .iter()
            .find(|f| f.import_headers().contains(&h.as_str()))
            .map(|f| Column::Profile(*f))
    })
}

/// A rejected row: its line in the file and why (never its values).
#[derive(Debug)]
pub struct RowError {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong.
    pub error: ValidationError,
}

/// Why a file cannot be imported at all (row errors are [`RowError`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The header row is missing or unreadable.
    #[error("the header row cannot be read")]
    Header,
    /// No column maps to a name, e-mail or phone: nothing would identify a customer.
    #[error("no recognised name, e-mail or phone column in the header row")]
    NoIdentity,
}

/// What a CSV file holds: the valid customers with their lines, the rejected rows, the ignored
/// headers.
pub type ParsedCsv = (Vec<(u64, NewCustomer)>, Vec<RowError>, Vec<String>);

/// Parses and validates a whole CSV: the valid customers, the rejected rows, the ignored headers.
pub fn parse_csv(reader: impl std::io::Read) -> Result<ParsedCsv, CsvError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr.headers().map_err(|_| CsvError::Header)?.clone();
    let columns: Vec<Option<Column>> = headers.iter().map(column_for).collect();
    let ignored: Vec<String> = headers
        .iter()
        .zip(&columns)
        .filter(|(_, c)| c.is_none())
        .map(|(h, _)| h.to_owned())
        .collect();
    if !columns.iter().any(|c| {
        matches!(
            c,
            Some(
                Column::First
                    | Column::Last
                    | Column::Profile(
                        ProfileField::Name | ProfileField::Email | ProfileField::Phone
                    )
            )
        )
    }) {
        return Err(CsvError::NoIdentity);
    }
    // Rows are checked on every core while this thread reads the next ones: checking (Unicode
    // normalisation, e-mail and phone parsing) took two thirds of the read of a 1,000,000-row
    // file on one core (issue 19). Chunks come back in any order and are put back in file order.
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut bad = Vec::new();
    let (to_check, checking) = std::sync::mpsc::sync_channel::<(usize, Vec<Read>)>(workers * 2);
    // Owned by the workers alone: were they all to panic, the receiver goes with them, the
    // reading below stops instead of waiting on a full channel, and the scope passes the panic on.
    let checking = std::sync::Arc::new(std::sync::Mutex::new(checking));
    let (done, results) = std::sync::mpsc::channel();
    let mut checked: Vec<(usize, Vec<Checked>)> = std::thread::scope(|s| {
        for _ in 0..workers {
            let (checking, done, columns) = (checking.clone(), done.clone(), &columns);
            s.spawn(move || {
                // The lock is held only to take the next chunk; a poisoned one ends the worker.
                while let Ok(Ok((i, rows))) = checking.lock().map(|r| r.recv()) {
                    let rows: Vec<Checked> = rows
                        .into_iter()
                        .map(|(line, record)| (line, row_to_customer(columns, &record)))
                        .collect();
                    if done.send((i, rows)).is_err() {
                        break;
                    }
                }
            });
        }
        drop((done, checking));
        let mut chunk: Vec<Read> = Vec::with_capacity(CHECK_CHUNK);
        let mut chunks = 0;
        let mut record = csv::StringRecord::new();
        loop {
            let line = rdr.position().line();
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(_) => {
                    bad.push(RowError {
                        line,
                        error: ValidationError::new("row", "is not well-formed CSV"),
                    });
                    continue;
                }
            }
            let line = record.position().map(|p| p.line()).unwrap_or(line);
            if record.iter().all(str::is_empty) {
                continue;
            }
            chunk.push((line, std::mem::take(&mut record)));
            if chunk.len() == CHECK_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHECK_CHUNK));
                // Every worker gone (they only stop when this sender is dropped): stop reading.
                if to_check.send((chunks, full)).is_err() {
                    break;
                }
                chunks += 1;
            }
        }
        if !chunk.is_empty() {
            let _ = to_check.send((chunks, chunk));
        }
        drop(to_check);
        results.into_iter().collect()
    });
    checked.sort_unstable_by_key(|(i, _)| *i);
    let mut ok = Vec::new();
    for (line, row) in checked.into_iter().flat_map(|(_, rows)| rows) {
        match row {
            Ok(c) => ok.push((line, c)),
            Err(error) => bad.push(RowError { line, error }),
        }
    }
    bad.sort_by_key(|e| e.line);
    Ok((ok, bad, ignored))
}

/// Rows read and handed to a checking thread at a time.
const CHECK_CHUNK: usize = 4_096;
/// A row as read: its line and its fields.
type Read = (u64, csv::StringRecord);
/// A row as checked: its line and the customer, or why it is rejected.
type Checked = (u64, Result<NewCustomer, ValidationError>);

fn row_to_customer(
    columns: &[Option<Column>],
    record: &csv::StringRecord,
) -> Result<NewCustomer, ValidationError> {
    let mut input = CustomerInput::default();
    let (mut first, mut last, mut address) = (None, None, Address::default());
    for (value, col) in record.iter().zip(columns) {
        if value.is_empty() {
            continue;
        }
        let v = Some(value.to_owned());
        match col {
            Some(Column::Profile(f)) => input.set_text(*f, value.to_owned()),
            Some(Column::First) => first = v,
            Some(Column::Last) => last = v,
            Some(Column::Street) => address.street = v,
            Some(Column::City) => address.city = v,
            Some(Column::PostalCode) => address.postal_code = v,
            Some(Column::Country) => address.country = v,
            None => {}
        }
    }
    if input.name.is_none() {
        let joined = [first, last]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        input.name = (!joined.is_empty()).then_some(joined);
    }
    if address != Address::default() {
        input.address = Some(AddressInput::Parts(address));
    }
    input.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_headers_and_reports_lines() {
        let csv = "First Name,Last Name,Email,Phone,Street,City,Postal Code,Country,Lead Source\n\
                   Ada,Lovelace,ada@example.com,+44 20 7946 0001,1 Demo Lane,London,W1 1AA,GB,web\n\
                   Bob,,not-an-email,,,,,,\n\
                   ,,,,,,,,\n\
                   Cy,Smith,,+1 202 555 0143,,,,,\n";
        let (ok, bad, ignored) = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].0, 2);
        assert_eq!(ok[0].1.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(ok[0].1.phone.as_deref(), Some("+442079460001"));
        assert_eq!(
            ok[0].1.address.as_ref().and_then(|a| a.city.as_deref()),
            Some("London")
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        assert_eq!(bad[0].error.field, "email");
        assert_eq!(ignored, vec!["Lead Source".to_string()]);
    }

    /// A field added to the profile's declaration is imported by its declared headers.
    #[test]
    fn imports_the_preferred_language() {
        let csv = "Name,Language\nAda Lovelace,EN-gb\nBob Bad,klingon\n";
        let (ok, bad, ignored) = parse_csv(csv.as_bytes()).unwrap();
        assert!(ignored.is_empty());
        assert_eq!(ok[0].1.preferred_language.as_deref(), Some("en-GB"));
        assert_eq!(bad.len(), 1);
        assert_eq!(
            (bad[0].line, bad[0].error.field.as_ref()),
            (3, "preferred_language")
        );
    }

    /// Rows checked on several threads come back in file order, with their own lines.
    #[test]
    fn a_long_file_keeps_its_order_and_lines() {
        let mut csv = b"Name,Email\n".to_vec();
        let rows = 3 * CHECK_CHUNK + 17;
        for i in 0..rows {
            match i % 997 {
                5 => csv.extend(format!("Bad {i},not-an-email\n").as_bytes()),
                // Not UTF-8: not well-formed, reported by line like the rest.
                11 => csv.extend(b"Bad \xff,x@example.com\n"),
                _ => csv.extend(format!("Person {i},p{i}@example.com\n").as_bytes()),
            }
        }
        let (ok, bad, _) = parse_csv(csv.as_slice()).unwrap();
        let bad_rows: Vec<usize> = (0..rows).filter(|i| [5, 11].contains(&(i % 997))).collect();
        assert_eq!(ok.len() + bad.len(), rows);
        assert_eq!(
            bad.iter().map(|e| e.line).collect::<Vec<_>>(),
            bad_rows.iter().map(|i| *i as u64 + 2).collect::<Vec<_>>()
        );
        for (n, (line, c)) in ok.iter().enumerate() {
            let i = usize::try_from(*line).unwrap() - 2;
            assert!(!bad_rows.contains(&i));
            assert_eq!(
                c.email.as_deref(),
                Some(format!("p{i}@example.com").as_str())
            );
            assert!(n == 0 || ok[n - 1].0 < *line, "out of order at {line}");
        }
    }

    #[test]
    fn refuses_a_file_without_identity_columns() {
        assert!(parse_csv("Foo,Bar\n1,2\n".as_bytes()).is_err());
    }
}
