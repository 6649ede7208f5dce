//! The neutral checkout events and what the CRM does with each (see `docs/deal-engine.md`,
//! "Events and origins"): their class, the origin a new integration creates for each and
//! its entry status, and the WhatsApp message a seller starts from.

use crate::tables::enums::{CheckoutEvent, DealStatus};

/// How an event moves a deal. The derived order is the tie-break rank of the fold (see
/// `docs/deal-engine.md`, "The log and the fold").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventClass {
    PreSale,
    Paid,
    AfterSale,
    Info,
}

use CheckoutEvent::*;

impl CheckoutEvent {
    pub const ALL: [CheckoutEvent; 11] = [
        CartAbandoned,
        PaymentPending,
        PaymentRefused,
        PaymentExpired,
        PurchaseApproved,
        PurchaseComplete,
        PaymentOverdue,
        RefundRequested,
        Refunded,
        Chargeback,
        SubscriptionCanceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CartAbandoned => "CART_ABANDONED",
            PaymentPending => "PAYMENT_PENDING",
            PaymentRefused => "PAYMENT_REFUSED",
            PaymentExpired => "PAYMENT_EXPIRED",
            PurchaseApproved => "PURCHASE_APPROVED",
            PurchaseComplete => "PURCHASE_COMPLETE",
            PaymentOverdue => "PAYMENT_OVERDUE",
            RefundRequested => "REFUND_REQUESTED",
            Refunded => "REFUNDED",
            Chargeback => "CHARGEBACK",
            SubscriptionCanceled => "SUBSCRIPTION_CANCELED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == value)
    }

    pub fn class(self) -> EventClass {
        match self {
            CartAbandoned | PaymentPending | PaymentRefused | PaymentExpired => EventClass::PreSale,
            PurchaseApproved | PurchaseComplete => EventClass::Paid,
            PaymentOverdue | RefundRequested | Refunded | Chargeback | SubscriptionCanceled => {
                EventClass::AfterSale
            }
        }
    }

    /// The origin a new integration creates for the event, and its entry status.
    pub fn default_origin(self) -> (&'static str, DealStatus) {
        match self {
            CartAbandoned => ("Carrinho abandonado", DealStatus::Open),
            PaymentPending => ("Boleto/Pix pendente", DealStatus::Open),
            PaymentRefused => ("Cartão recusado", DealStatus::Open),
            PaymentExpired => ("Boleto/Pix expirado", DealStatus::Open),
            PurchaseApproved => ("Compra aprovada", DealStatus::Won),
            PurchaseComplete => ("Compra completa", DealStatus::Won),
            PaymentOverdue => ("Pagamento atrasado", DealStatus::Open),
            RefundRequested => ("Reembolso solicitado", DealStatus::Open),
            Refunded => ("Reembolsado", DealStatus::Lost),
            Chargeback => ("Chargeback", DealStatus::Lost),
            SubscriptionCanceled => ("Assinatura cancelada", DealStatus::Open),
        }
    }

    /// The WhatsApp message of the event's origin until an admin edits it (placeholders
    /// in `docs/pipeline.md`, "Contacting the buyer").
    pub fn default_message(self) -> &'static str {
        match self {
            CartAbandoned => {
                "Oi {primeiro_nome}, tudo bem? Vi que você começou a compra de {produto} e não \
                 finalizou. Posso te ajudar com alguma dúvida? Para concluir: {link}"
            }
            PaymentPending => {
                "Oi {primeiro_nome}! Seu pedido de {produto} ({valor}) está aguardando o \
                 pagamento. Para pagar: {pix}{boleto}"
            }
            PaymentRefused => {
                "Oi {primeiro_nome}, tudo bem? O pagamento de {produto} no cartão não foi \
                 aprovado. Quer tentar com outro cartão, Pix ou boleto? Te ajudo a concluir: \
                 {link}"
            }
            PaymentExpired => {
                "Oi {primeiro_nome}! O Pix/boleto de {produto} venceu. Quer que eu te ajude a \
                 gerar um novo para concluir a compra? {link}"
            }
            PurchaseApproved => {
                "Oi {primeiro_nome}, seja bem-vindo(a)! Sua compra de {produto} foi aprovada. \
                 Conte comigo para o que precisar."
            }
            PurchaseComplete => {
                "Oi {primeiro_nome}! Como está sendo sua experiência com {produto}? Posso \
                 ajudar em algo?"
            }
            PaymentOverdue => {
                "Oi {primeiro_nome}, tudo bem? A renovação de {produto} ({valor}) está em \
                 aberto. Quer ajuda para regularizar e não perder o acesso? {link}"
            }
            RefundRequested => {
                "Oi {primeiro_nome}, vi seu pedido de reembolso de {produto}. Posso entender o \
                 que aconteceu e ver se consigo te ajudar?"
            }
            Refunded => {
                "Oi {primeiro_nome}, o reembolso de {produto} foi processado. Posso saber o que \
                 faltou para você? Sua opinião ajuda muito."
            }
            Chargeback => {
                "Oi {primeiro_nome}, recebemos uma contestação da compra de {produto} \
                 ({valor}). Podemos conversar para entender o que houve?"
            }
            SubscriptionCanceled => {
                "Oi {primeiro_nome}, vi que sua assinatura de {produto} foi cancelada. Posso \
                 saber o motivo? Se quiser voltar, te ajudo."
            }
        }
    }
}

/// The message of a hand-made origin until an admin edits it.
pub const HAND_MADE_MESSAGE: &str = "Oi {primeiro_nome}, tudo bem?";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_and_has_an_origin_and_a_message() {
        for event in CheckoutEvent::ALL {
            assert_eq!(CheckoutEvent::parse(event.as_str()), Some(event));
            assert!(event.default_message().contains("{primeiro_nome}"));
            assert!(!event.default_origin().0.is_empty());
        }
        assert_eq!(PurchaseApproved.default_origin().1, DealStatus::Won);
        assert_eq!(Refunded.default_origin().1, DealStatus::Lost);
        assert_eq!(CheckoutEvent::parse("PURCHASE_REFUSED"), None);
    }
}
