//! `steward import FILE.csv`: validate every row first, then seal and store in batches.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use steward_domain::{
    Address, AddressInput, CustomerInput, NewCustomer, Timestamp, ValidationError,
};
use steward_service::Vault;

use crate::{StoreArgs, open};

/// Options of `steward import`.
#[derive(Args)]
pub struct ImportArgs {
    /// The CSV file, with a header row.
    file: PathBuf,
    /// Import the valid rows even if some are invalid (the invalid ones are reported and skipped).
    #[arg(long)]
    skip_invalid: bool,
    /// Customers per transaction.
    #[arg(long, default_value_t = 50_000)]
    batch: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// The profile field a CSV column feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    First,
    Last,
    Email,
    Phone,
    Street,
    City,
    PostalCode,
    Country,
    DateOfBirth,
}

/// Maps the usual CRM export headers (Salesforce, HubSpot, Zoho, Pipedrive, Google contacts…)
/// to profile fields; case, spaces, dashes and underscores are ignored.
fn column_for(header: &str) -> Option<Column> {
    let h: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    Some(match h.as_str() {
        "name" | "fullname" | "contactname" | "customername" => Column::Name,
        "firstname" | "givenname" | "forename" => Column::First,
        "lastname" | "surname" | "familyname" => Column::Last,
        "email" | "emailaddress" | "email1" | "primaryemail" | "workemail" | "emailaddress1" => {
            Column::Email
        }
        "phone" | "phonenumber" | "mobile" | "mobilephone" | "mobilenumber" | "telephone"
        | "tel" | "primaryphone" | "phone1" => Column::Phone,
        "street" | "address" | "streetaddress" | "address1" | "addressline1" | "mailingstreet"
        | "billingstreet" => Column::Street,
        "city" | "town" | "mailingcity" | "billingcity" => Column::City,
        "postalcode"
        | "postcode"
        | "zip"
        | "zipcode"
        | "mailingpostalcode"
        | "mailingzippostalcode"
        | "billingpostalcode" => Column::PostalCode,
        "country" | "countryregion" | "mailingcountry" | "billingcountry" => Column::Country,
        "dateofbirth" | "birthdate" | "birthday" | "dob" => Column::DateOfBirth,
        _ => return None,
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

/// Parses and validates a whole CSV: the valid customers, the rejected rows, the ignored headers.
pub fn parse_csv(
    reader: impl std::io::Read,
) -> anyhow::Result<(Vec<NewCustomer>, Vec<RowError>, Vec<String>)> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr.headers().context("reading the header row")?.clone();
    let columns: Vec<Option<Column>> = headers.iter().map(column_for).collect();
    let ignored: Vec<String> = headers
        .iter()
        .zip(&columns)
        .filter(|(_, c)| c.is_none())
        .map(|(h, _)| h.to_owned())
        .collect();
    anyhow::ensure!(
        columns.iter().any(|c| matches!(
            c,
            Some(Column::Name | Column::First | Column::Last | Column::Email | Column::Phone)
        )),
        "no recognised name, e-mail or phone column in the header row"
    );
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
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
        match row_to_customer(&columns, &record) {
            Ok(c) => ok.push(c),
            Err(error) => bad.push(RowError { line, error }),
        }
    }
    Ok((ok, bad, ignored))
}

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
            Some(Column::Name) => input.name = v,
            Some(Column::First) => first = v,
            Some(Column::Last) => last = v,
            Some(Column::Email) => input.email = v,
            Some(Column::Phone) => input.phone = v,
            Some(Column::Street) => address.street = v,
            Some(Column::City) => address.city = v,
            Some(Column::PostalCode) => address.postal_code = v,
            Some(Column::Country) => address.country = v,
            Some(Column::DateOfBirth) => input.date_of_birth = v,
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

/// Seals and stores `customers` in batches, overlapping the sealing of one batch with the
/// storing of the previous one. Calls `progress` with the number stored after each batch.
pub async fn store_all(
    vault: &Vault,
    customers: Vec<NewCustomer>,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<usize> {
    let now = Timestamp::now();
    let mut chunks = customers
        .chunks(batch.max(1))
        .map(<[NewCustomer]>::to_vec)
        .collect::<Vec<_>>()
        .into_iter();
    let seal = |chunk: Vec<NewCustomer>| {
        let v = vault.clone();
        tokio::task::spawn_blocking(move || {
            chunk
                .iter()
                .map(|c| v.seal_new_customer(c, now))
                .collect::<Result<Vec<_>, _>>()
        })
    };
    let mut pending = chunks.next().map(seal);
    let mut stored = 0;
    while let Some(task) = pending.take() {
        let sealed = task.await.context("sealing task failed")??;
        pending = chunks.next().map(seal);
        vault
            .insert_sealed(steward_service::Actor::Operator("import"), &sealed)
            .await?;
        stored += sealed.len();
        progress(stored);
    }
    Ok(stored)
}

/// Runs `steward import`.
pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    open::init_logging(false);
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let started = Instant::now();
    let (customers, errors, ignored) = parse_csv(std::io::BufReader::new(file))?;
    if !ignored.is_empty() {
        eprintln!(
            "Ignoring columns not mapped to a profile field (not collected): {}",
            ignored.join(", ")
        );
    }
    for e in &errors {
        eprintln!("line {}: {}: {}", e.line, e.error.field, e.error.reason);
    }
    if !errors.is_empty() && !args.skip_invalid {
        eprintln!(
            "{} invalid rows; nothing was imported. Fix them, or pass --skip-invalid to import the {} valid rows.",
            errors.len(),
            customers.len()
        );
        return Ok(ExitCode::from(2));
    }
    let vault = open::vault(&args.store).await?;
    let total = customers.len();
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} customers ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let stored = store_all(&vault, customers, args.batch, |n| {
        bar.set_position(n as u64)
    })
    .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "Imported {stored} customers ({} invalid rows skipped) in {secs:.1} s ({:.0} customers/s).",
        errors.len(),
        stored as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
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
        assert_eq!(ok[0].name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(ok[0].phone.as_deref(), Some("+442079460001"));
        assert_eq!(
            ok[0].address.as_ref().and_then(|a| a.city.as_deref()),
            Some("London")
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        assert_eq!(bad[0].error.field, "email");
        assert_eq!(ignored, vec!["Lead Source".to_string()]);
    }

    #[test]
    fn refuses_a_file_without_identity_columns() {
        assert!(parse_csv("Foo,Bar\n1,2\n".as_bytes()).is_err());
    }
}
