//! The WhatsApp button (see `docs/pipeline.md`, "Contacting the buyer"): a `wa.me` link
//! whose text is the origin's message with the deal's facts filled in.

use crate::sale::details::DealDetails;

/// What a message's placeholders stand for.
#[derive(Debug, Clone, Default)]
pub struct MessageFacts<'a> {
    pub name: Option<&'a str>,
    pub product: Option<&'a str>,
    pub value_cents: Option<i64>,
    pub currency: Option<&'a str>,
    pub paid: bool,
    pub details: Option<&'a DealDetails>,
}

/// `https://wa.me/<digits>?text=…`; `None` without a usable phone.
pub fn url(phone: Option<&str>, template: &str, facts: &MessageFacts<'_>) -> Option<String> {
    let digits: String = phone?.chars().filter(char::is_ascii_digit).collect();
    if !(8..=15).contains(&digits.len()) {
        return None;
    }
    let text = fill(template, facts);
    Some(format!("https://wa.me/{digits}?text={}", encode(&text)))
}

/// The message with its placeholders filled in; a fact the deal lacks leaves nothing
/// (and no stray space before punctuation).
pub fn fill(template: &str, facts: &MessageFacts<'_>) -> String {
    let name = facts.name.map(str::trim).filter(|n| !n.is_empty());
    let first = name.and_then(|n| n.split_whitespace().next()).unwrap_or("");
    let payment = facts.details.and_then(|d| d.payment.as_ref());
    // A paid deal has nothing left to pay.
    let unpaid = |v: Option<&String>| {
        v.filter(|_| !facts.paid)
            .map(String::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let pix = unpaid(payment.and_then(|p| p.pix_code.as_ref()));
    let boleto = unpaid(payment.and_then(|p| p.billet_url.as_ref()));
    let value = match (facts.value_cents, facts.currency) {
        (Some(cents), Some("BRL") | None) => format!("R$ {}", brl(cents)),
        (Some(cents), Some(currency)) => format!("{currency} {}", brl(cents)),
        _ => String::new(),
    };
    let link = payment
        .and_then(|p| p.checkout_url.as_deref())
        .unwrap_or("")
        .to_owned();
    let pairs = [
        ("{primeiro_nome}", first.to_owned()),
        ("{nome}", name.unwrap_or("").to_owned()),
        ("{produto}", facts.product.unwrap_or("").to_owned()),
        ("{valor}", value),
        (
            "{pix}",
            if pix.is_empty() {
                pix
            } else {
                format!("\nPix copia e cola: {pix}")
            },
        ),
        (
            "{boleto}",
            if boleto.is_empty() {
                boleto
            } else {
                format!("\nBoleto: {boleto}")
            },
        ),
        ("{link}", link),
    ];
    let mut text = template.to_owned();
    for (placeholder, value) in pairs {
        text = text.replace(placeholder, &value);
    }
    tidy(&text)
}

/// `97,00` for 9700 (Brazilian decimals, thousands with dots).
fn brl(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{:02}", abs % 100)
}

/// Collapses the gaps empty facts leave: double spaces, a space before punctuation,
/// empty parentheses, trailing spaces.
fn tidy(text: &str) -> String {
    let mut out = text.replace("()", "").replace("( )", "");
    for (from, to) in [
        ("  ", " "),
        (" ,", ","),
        (" !", "!"),
        (" ?", "?"),
        (" .", "."),
        (" :", ":"),
    ] {
        while out.contains(from) {
            out = out.replace(from, to);
        }
    }
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sale::details::Payment;

    #[test]
    fn fills_the_message_and_encodes_it() {
        let details = DealDetails {
            payment: Some(Payment {
                pix_code: Some("000201PIX".into()),
                ..Payment::default()
            }),
            ..DealDetails::default()
        };
        let facts = MessageFacts {
            name: Some("Maria da Silva"),
            product: Some("Curso X"),
            value_cents: Some(123_456),
            currency: Some("BRL"),
            paid: false,
            details: Some(&details),
        };
        let text = fill("Oi {primeiro_nome}! {produto} ({valor}). {pix}", &facts);
        assert_eq!(
            text,
            "Oi Maria! Curso X (R$ 1.234,56).\nPix copia e cola: 000201PIX"
        );
        let url = url(Some("+55 (11) 98765-4321"), "Oi {nome} & tchau", &facts).unwrap();
        assert_eq!(
            url,
            "https://wa.me/5511987654321?text=Oi%20Maria%20da%20Silva%20%26%20tchau"
        );
    }

    #[test]
    fn missing_facts_leave_no_gaps_and_paid_deals_no_pix() {
        let details = DealDetails {
            payment: Some(Payment {
                pix_code: Some("PIX".into()),
                ..Payment::default()
            }),
            ..DealDetails::default()
        };
        let facts = MessageFacts {
            paid: true,
            details: Some(&details),
            ..MessageFacts::default()
        };
        assert_eq!(
            fill("Oi {primeiro_nome}, tudo bem? {pix}", &facts),
            "Oi, tudo bem?"
        );
        assert_eq!(url(None, "x", &facts), None);
        assert_eq!(url(Some("123"), "x", &facts), None);
    }
}
