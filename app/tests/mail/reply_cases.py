"""A labelled set of replies: what the new words are and what is quoted history or signature.

A case is right when every `new` phrase is in the extracted reply text and no `old` phrase
is (quoted history, attribution line, signature). Used by the reply tests and to compare the
two candidate libraries (docs/agent-fields.md gives the figures).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReplyCase:
    name: str
    text: str
    new: tuple[str, ...]
    old: tuple[str, ...]


REPLY_CASES: tuple[ReplyCase, ...] = (
    ReplyCase(
        "gmail",
        "Thursday works for me, see you then.\n\n"
        "On Mon, Dec 1, 2026 at 10:02 AM Alice Example <alice@example.org> wrote:\n\n"
        "> Could we meet on Thursday to go over the budget?\n>\n> Alice\n",
        ("Thursday works for me",),
        ("go over the budget", "wrote:"),
    ),
    ReplyCase(
        "gmail_wrapped_attribution",
        "Approved, please go ahead.\n\n"
        "On Mon, Dec 1, 2026 at 10:02 AM Alice Example via Billing <\n"
        "billing-noreply@example.org> wrote:\n\n"
        "> Please approve invoice 4711 for the printer lease.\n",
        ("Approved, please go ahead",),
        ("printer lease",),
    ),
    ReplyCase(
        "outlook_original_message",
        "The contract is signed and attached.\n\nBest regards\nBob\n\n"
        "-----Original Message-----\n"
        "From: Alice Example <alice@example.org>\n"
        "Sent: Monday, December 1, 2026 10:02 AM\n"
        "To: Bob Builder <bob@example.com>\n"
        "Subject: Contract\n\n"
        "Can you send the signed contract back by Friday?\n",
        ("contract is signed and attached",),
        ("send the signed contract back", "Original Message"),
    ),
    ReplyCase(
        "outlook_from_sent",
        "I have moved the call to 3 pm.\n\n"
        "________________________________\n"
        "From: Alice Example <alice@example.org>\n"
        "Sent: Monday, December 1, 2026 10:02\n"
        "To: Bob Builder\n"
        "Subject: Call\n\n"
        "Is the call at 2 pm still on?\n",
        ("moved the call to 3 pm",),
        ("still on",),
    ),
    ReplyCase(
        "outlook_from_sent_no_rule",
        "Yes, the shipment left the warehouse today.\n\n"
        "From: Alice Example <alice@example.org>\n"
        "Sent: Monday, December 1, 2026 10:02\n"
        "To: Bob Builder <bob@example.com>\n"
        "Subject: Shipment\n\n"
        "Has the shipment left yet?\n",
        ("shipment left the warehouse today",),
        ("Has the shipment left yet",),
    ),
    ReplyCase(
        "apple_mail",
        "Sounds great, count me in.\n\nSent from my iPhone\n\n"
        "> On 1 Dec 2026, at 10:02, Alice Example <alice@example.org> wrote:\n"
        ">\n> Dinner on Saturday at eight?\n",
        ("count me in",),
        ("Dinner on Saturday", "Sent from my iPhone"),
    ),
    ReplyCase(
        "thunderbird",
        "Here are the minutes from today's meeting.\n\n"
        "On 01.12.26 10:02, Alice Example wrote:\n"
        "> Could someone send the minutes?\n",
        ("minutes from today's meeting",),
        ("Could someone send",),
    ),
    ReplyCase(
        "quoted_plain",
        "Agreed on all points.\n\n"
        "> First point: ship on Monday.\n"
        "> Second point: tell the customer.\n",
        ("Agreed on all points",),
        ("ship on Monday", "tell the customer"),
    ),
    ReplyCase(
        "bottom_posted",
        "On Mon, Dec 1, 2026 at 10:02 AM Alice Example <alice@example.org> wrote:\n"
        "> Do you still have the spare keyboard?\n\n"
        "Yes, I will bring it tomorrow.\n",
        ("bring it tomorrow",),
        ("spare keyboard",),
    ),
    ReplyCase(
        "signature_dashes",
        "Please find the report below.\n\n-- \nBob Builder\nHead of Operations\n+1 555 0100\n",
        ("Please find the report below",),
        ("Head of Operations", "555 0100"),
    ),
    ReplyCase(
        "german",
        "Danke, das passt mir gut.\n\n"
        "Am Mo., 1. Dez. 2026 um 10:02 Uhr schrieb Alice Example <alice@example.org>:\n"
        "> Passt dir der Termin am Donnerstag?\n",
        ("das passt mir gut",),
        ("Termin am Donnerstag", "schrieb"),
    ),
    ReplyCase(
        "french",
        "Merci, je serai là jeudi.\n\n"
        "Le lun. 1 déc. 2026 à 10:02, Alice Example <alice@example.org> a écrit :\n"
        "> Pouvez-vous venir jeudi à la réunion ?\n",
        ("je serai là jeudi",),
        ("venir jeudi à la réunion", "a écrit"),
    ),
    ReplyCase(
        "spanish",
        "Gracias, lo reviso mañana.\n\n"
        "El lun, 1 dic 2026 a las 10:02, Alice Example (<alice@example.org>) escribió:\n"
        "> ¿Puedes revisar el presupuesto?\n",
        ("lo reviso mañana",),
        ("revisar el presupuesto", "escribió"),
    ),
    ReplyCase(
        "outlook_german",
        "Die Rechnung ist bezahlt.\n\n"
        "Von: Alice Example <alice@example.org>\n"
        "Gesendet: Montag, 1. Dezember 2026 10:02\n"
        "An: Bob Builder <bob@example.com>\n"
        "Betreff: Rechnung\n\n"
        "Ist die Rechnung schon bezahlt?\n",
        ("Die Rechnung ist bezahlt",),
        ("schon bezahlt",),
    ),
    ReplyCase(
        "outlook_french",
        "Le devis est validé.\n\n"
        "De : Alice Example <alice@example.org>\n"
        "Envoyé : lundi 1 décembre 2026 10:02\n"
        "À : Bob Builder <bob@example.com>\n"
        "Objet : Devis\n\n"
        "Le devis vous convient-il ?\n",
        ("Le devis est validé",),
        ("vous convient",),
    ),
    ReplyCase(
        "italian",
        "Va bene, ci vediamo lunedì.\n\n"
        "Il giorno lun 1 dic 2026 alle ore 10:02 Alice Example <alice@example.org> ha "
        "scritto:\n\n> Ci vediamo lunedì in ufficio?\n",
        ("ci vediamo lunedì",),
        ("in ufficio",),
    ),
    ReplyCase(
        "dutch",
        "Prima, ik stuur het vandaag op.\n\n"
        "Op ma 1 dec. 2026 om 10:02 schreef Alice Example <alice@example.org>:\n\n"
        "> Kun je het pakket opsturen?\n",
        ("ik stuur het vandaag op",),
        ("pakket opsturen", "schreef"),
    ),
    ReplyCase(
        "closing_signature",
        "The parts were shipped today.\n\nBest regards,\nBob Builder\n"
        "ACME Corp | Head of Operations | +1 555 0100\n",
        ("parts were shipped today",),
        ("Head of Operations",),
    ),
    ReplyCase(
        "not_a_reply",
        "Hello team,\n\nthe office is closed on Friday for maintenance.\n"
        "Please take your laptops home.\n\nThanks,\nCarol\n",
        ("office is closed on Friday", "take your laptops home"),
        (),
    ),
    ReplyCase(
        "not_a_reply_with_greater_than_text",
        "The numbers for November:\n\nrevenue 120k\ncosts 80k\nmargin 40k\n\nThat is above plan.\n",
        ("revenue 120k", "margin 40k", "above plan"),
        (),
    ),
)
