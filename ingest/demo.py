"""Demo and benchmark mail for the five Valuit support addresses.

`demo_messages()` is a fixed, hand-written story of about 60 mails over ~5 days around a
maintenance window (`demo_window()`): new requests to every function, replies and quoting,
HTML-only mail, an attachment, an out-of-office reply, a bounce, odd charsets and discrepancy
reports after the window. `write_spool()` drops it into a Maildir spool once, for `make run`.
`generate()` streams any number of seeded messages with a support inbox's mix of MIME shapes, for
benchmarks and crash tests; `write_maildir()` writes either into Maildirs. Same base date or
seed, same bytes. Senders use RFC 2606 example domains only.
"""

from __future__ import annotations

import base64
import html
import os
import random
import socket
import sys
import textwrap
import time
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import NamedTuple

from db.core import clock
from db.core.connect import open_db, write
from db.core.migrations import FUNCTIONS
from db.maintenance import windows

DEMO_BASE = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday; the window ran on Sunday
_TEAMS = {"technical": "Valuit Technical Support", "sales": "Valuit Sales",
          "compliance": "Valuit Compliance", "general": "Valuit Support",
          "marketing": "Valuit Marketing"}  # fmt: skip
_GREETINGS = ("Hi,", "Hello,", "Dear Valuit team,", "Hello support,", "Good morning,")
_SIGNOFFS = ("Thanks,\n{first}", "Best regards,\n{name}", "Kind regards,\n{name}", "{first}",
             "Cheers,\n{first}", "Many thanks,\n{name}")  # fmt: skip
# key: display name, address, UTC offset in hours
_SENDERS: dict[str, tuple[str, str, float]] = {
    "priya": ("Priya Raman", "priya.raman@example.com", 5.5),
    "sam": ("", "sam1987@example.org", -8),
    "hannah": ("Hannah Lee", "hannah@brightpath.example.com", -8),
    "tom": ("Tom Becker", "tom.becker@example.org", -5),
    "kenji": ("Kenji Watanabe", "kenji.w@example.com", 9),
    "maria": ("Maria Rossi", "maria.rossi@studio.example.org", 1),
    "pieter": ("Pieter de Vries", "pieter@devries.example.com", 1),
    "zoe": ("Zoë Müller", "zoe.mueller@example.net", 1),
    "ayse": ("Ayşe Yılmaz", "ayse.yilmaz@example.org", 3),
    "lukasz": ("Łukasz Nowak", "l.nowak@example.org", 1),
    "acct": ("Accounts Payable", "ap@holdings.example.org", 0),
    "daniel": ("Daniel Okafor", "d.okafor@example.net", 0),
    "greta": ("Greta Schäfer", "greta.schaefer@example.com", 1),
    "francois": ("François Lefèvre", "f.lefevre@example.net", 1),
    "wei": ("李伟", "li.wei@example.com", 8),
    "emma": ("Emma Lindqvist", "emma.lindqvist@example.com", 1),
    "mark": ("Mark Jensen", "m.jensen@audit.example.net", 1),
    "lan": ("Nguyễn Thị Lan", "lan.nguyen@example.net", 7),
    "jose": ("José Álvarez", "jose.alvarez@mail.example.com", 1),
    "chloe": ("Chloé Dubois", "chloe.dubois@example.com", 1),
    "bjorn": ("Björn Andersson", "bjorn@andersson.example.net", 1),
    "ines": ("Inês Carvalho", "ines.carvalho@example.org", 0),
    "noah": ("Noah Williams", "noah.williams@example.com", -5),
    "aisha": ("Aisha Bello", "aisha.bello@example.net", 1),
    "lucia": ("Lucía Fernández", "lucia.fernandez@example.net", -3),
    "siobhan": ("Siobhán O'Brien", "siobhan.obrien@example.org", 0),
    "omar": ("Omar Haddad", "omar.haddad@example.net", 4),
    "nora": ("Nora Kovačević", "nora@events.example.org", 0),
    "arjun": ("Arjun Mehta", "arjun.mehta@example.net", 5.5),
}  # fmt: skip

# "== HOURS-FROM-BASE FUNCTION SENDER [#key] [<parent-key] [flags] | Subject" then the body.
# Subject "^" is "Re: " + the parent's. Source lines of 80+ characters continue a paragraph.
_SCRIPT = """
== -61 sales priya #price | Pricing for a team of 12
We are a family office evaluating Valuit for 12 analysts. Could you send the per-seat price for
the Professional and Enterprise plans? Is there a discount for annual billing?

Two external auditors would need read-only access. Are those seats charged too?
== -60 sales daemon <price bounce | Undelivered Mail Returned to Sender
== -59 general sam #notes nosig | where do I find the release notes?
hi, the dashboard said there was an update this weekend. where can I read what changed?
thx, Sam
== -58 marketing hannah #pitch | Partnership idea: co-hosted webinar series
I run partnerships at Brightpath Media; our newsletter reaches about 40,000 finance
professionals. Would Valuit like to co-host a three-part webinar series on digital asset
servicing in Q1? Could someone from marketing spare 20 minutes for a call next week?
== -57 technical tom | Dashboard extremely slow tonight
Since about 23:30 every dashboard page takes 30+ seconds to load. Is something going on?
== -55 technical kenji #down | Can't log in - is Valuit down?
I get a "Service temporarily unavailable" page when I try to log in, and I did not see any
notice. Is this an outage? I need to approve a transfer this morning (JST).
== -54 general maria | Site down??
Your website only shows a maintenance page. How long will this take?
== -52 general pieter ooo nosig | Automatic reply: Maintenance completed - please verify your data
Thank you for your message. I am out of the office until 1 December with limited access to
email. For urgent matters please contact finance@devries.example.com.

Pieter de Vries
== -51 technical zoe #bal | My balance looks wrong after the maintenance on {day}
Since the maintenance on {day} night my balance is EUR 4,210.00 lower than it was on {eve}
evening, and I have not made any transactions since Friday. Could you check? Account VA-20417.
== -50 compliance ayse #gdpr | GDPR data export request (Art. 15 and 20)
Under Articles 15 and 20 of the GDPR I request a copy of all personal data you hold about me in
a machine-readable format (CSV or JSON), with the purposes of processing and the recipients.
The account is registered to this email address.
== -49 general lukasz #miss | A transaction is missing since last night's update
A transfer of EUR 1,250.00 I made on {eve} (ref TRX-88412) is no longer in my transaction
history since last night's update. The money did leave my bank account.
== -48 general acct pdf nosig | The statement shows a different amount
Hello,

The October statement (attached) shows a closing balance of EUR 12,480.35, but the dashboard
shows EUR 12,840.35 for 31 October. Which one is correct? We need it for our books.

Kind regards,
Accounts Payable
== -47 technical daniel #dup | Duplicated transaction on my account
Since the maintenance the same deposit appears twice: EUR 500.00, ref DEP-30117, is listed two
times and the balance counts it twice.
== -46 technical zoe <bal quote | ^
Sorry, I forgot to say: the difference is exactly the value of my holdings in the Alpine Real
Estate token. They show 0 units now.
== -45 technical greta #sec cc:compliance | Unrecognised login alert after the update
Right after the update I received a "new login from an unrecognised device" alert for my
account at 05:12 UTC. It was not me. I have changed my password and enabled 2FA.

I am copying compliance because our company policy requires reporting possible incidents.
== -44 general francois qp nosig | Prochaine maintenance mensuelle ?
Bonjour,

Pourriez-vous m'indiquer la date de la prochaine maintenance mensuelle ? Je dois préparer un
virement important et je préfère éviter la période où l'accès est limité.

Merci d'avance et bonne journée,
François Lefèvre
== -43 sales wei b64 nosig | Enterprise quote for our Singapore office / 新加坡办公室报价
Hello Valuit Sales,

We would like a quote for the Enterprise plan for 25 users in our Singapore office.

您好，我们希望为新加坡办公室的25位用户申请企业版报价，并了解是否支持中文界面。

谢谢！
李伟 (Li Wei)
== -42 marketing emma | Press enquiry: tokenisation platforms feature
I am writing a feature on tokenisation platforms for a trade magazine and would love a short
quote from Valuit on how you handle investor onboarding. My deadline is Friday.
== -40 compliance mark | SOC 2 report and data processing agreement
We audit one of your clients and need your latest SOC 2 Type II report and a copy of the data
processing agreement. Is there an NDA we should sign first?
== -39 technical lan #api | API returns 502 since the update
Since the maintenance about one in five calls to the positions endpoint returns 502 Bad
Gateway (e.g. request id req_7f3a9c21). Our integration retries, but the nightly sync fails.
== -38 general lukasz <miss | ^
Update: the transfer is back in the history, but now dated {day} instead of {eve}, so my monthly
report is off. Can this be corrected?
== -37 sales jose #npo | Discount for non-profit organisations?
Hola,

We are a small foundation managing an endowment. Do you offer discounted pricing for registered
non-profits?
== -36 technical chloe #2fa | 2FA codes not accepted after the maintenance
Bonjour,

Since this morning my authenticator codes are rejected ("invalid code"). The phone clock is
correct. I am locked out of the account.
== -35 technical bjorn <2fa | ^
Same problem here - Chloé and I share the company account. Both our authenticator apps fail.
== -34 compliance ines | KYC verification stuck at "pending"
I re-uploaded my proof of address two weeks ago and the verification still says "pending". Is
anything missing?
== -32 technical noah #csv | CSV export times out for long date ranges
Exporting transactions from 2024-01-01 to today times out after 60 seconds with "Gateway
Timeout". Shorter ranges work. Is there a limit?
== -31 general sam <notes nosig | ^
nvm, found them under Help > Release notes. but the notes for this weekend's update aren't there?
Sam
== -30 sales priya <price | ^
One more question: is single sign-on (SAML) included in Professional, or only in Enterprise?
== -29 technical aisha html | Transactions that differ after the update
<html><body><p>Hello,</p>
<p>These transactions look different since the update (screenshot:
<a href="https://files.example.org/s/8fK2q">files.example.org/s/8fK2q</a>):</p>
<table border="1" cellpadding="4">
<tr><th>Day</th><th>Reference</th><th>Before</th><th>Now</th></tr>
<tr><td>{eve}</td><td>TRX-87120</td><td>EUR 320.00</td><td>EUR 32.00</td></tr>
<tr><td>{eve}</td><td>TRX-87544</td><td>EUR 1,000.00</td><td>missing</td></tr>
<tr><td>{day}</td><td>FEE-11902</td><td>EUR 2.50</td><td>EUR 2.50 (twice)</td></tr>
</table>
<p>My account: <a href="https://app.example.com/accounts/VA-31188">VA-31188</a></p>
<p>Thanks,<br>Aisha Bello</p></body></html>
== -28 compliance lucia | How long do you keep data of closed accounts?
I closed my account in March. How long will you retain my personal data and transaction
records, and on what legal basis?
== -27 technical siobhan | Statement PDF won't download
Clicking "Download statement" shows a spinner forever (Chrome on Windows 11). Tried Edge too.
== -26 general omar | Change of registered email address
Please change the email on my account from this address to omar.h@example.org. I still have
access to both mailboxes.
== -25 marketing nora | Sponsorship: FinTech meetup in Lisbon
We organise a monthly FinTech meetup in Lisbon with about 150 attendees. Would Valuit like to
sponsor the February edition? Packages start at EUR 1,500.
== -24 technical daniel <dup | ^
It is now listed three times, and the balance went up by another EUR 500. Please fix this
before I get taxed on money I don't have!
== -23 sales noah | Upgrading mid-cycle - is it prorated?
If we move from Starter to Professional in the middle of a billing cycle, is the difference
prorated or charged in full?
== -22 general greta | Send maintenance notices to a second address
Can maintenance notices also go to it-ops@schaefer.example.com? We missed the last one and want
to back up our data before each window.
== -21 technical priya | Webhook deliveries delayed since {day}
Our webhook endpoint receives transaction events 20-40 minutes late since {day}. Before the
maintenance they arrived within seconds.
== -20 compliance ayse <gdpr | ^
Could you confirm that you received my data export request and tell me when to expect it?
== -18 marketing hannah <pitch | ^
Hi again, just bumping this up in case it got lost. Happy to send our media kit.
== -16 technical kenji <down | ^
It works now, thank you. But my portfolio value is about 2% lower than before the maintenance,
with no trades. Is the pricing feed up to date?
== -14 general ines | Will the quarterly deep maintenance affect the API?
Your maintenance page mentions quarterly deep maintenance. When is the next one, and will API
access be unavailable during it? We run automated reports at night.
== -12 sales jose <npo | ^
Forgot to mention: our charity registration number is 1187234 (England & Wales).
== -10 technical pieter | Mobile app shows the old balance
The iOS app still shows my balance from before the maintenance; the web app shows the new one.
Logging out and in again did not help.
== -8 general arjun | Fee charged twice during the maintenance
I was charged the monthly platform fee twice, once on {eve} and once on {day} during the
maintenance. Could you refund one of them?
== -6 compliance bjorn | Where is my data stored?
Hej,

For our internal audit: in which country are Valuit's servers and backups located? Do any
sub-processors store data outside the EEA?
== -4 technical lan <api quote | ^
Quick update: the 502s stopped around 14:00 UTC. Can you confirm it was on your side and not our
API key?
== -2 marketing sam nosig | unsubscribe from newsletter (but keep maintenance emails)
please take me off the marketing newsletter. I still want the maintenance notices though!
Sam
== 1 technical noah <csv | ^
Still timing out today, even for a 6-month range. This blocks our month-end close.
== 3 general wei | Password reset email never arrives
I requested a password reset three times and nothing arrives (I checked spam). Can you help?
== 5 sales acct nosig | VAT number on invoices
Please add our VAT number GB123456789 to future invoices and reissue the October one.

Accounts Payable
== 8 technical emma | Balance right now, but transaction dates shifted by one day
My balance is correct again, but all transactions from the week before the maintenance now show
a date one day later than they happened.
== 12 compliance daniel | Account closure and erasure of my data
Please close my account and erase my personal data under Article 17 GDPR once the duplicated
deposit issue is resolved.
== 20 general lucia | Feature request: dark mode
Any plans for a dark mode? Reading statements at night is painful :)
== 26 technical siobhan | Reports page blank in Firefox
The Reports page is completely blank in Firefox. The console shows "TypeError: e is undefined".
It works in Chrome.
== 30 sales chloe | Annual vs monthly billing
What is the price difference between annual and monthly billing on the Professional plan?
== 36 marketing ines | Happy to take part in a case study
Your newsletter mentioned you are looking for customers for case studies. Our fund would be
happy to participate.
== 42 technical tom | Platform unreachable - emergency maintenance?
The platform went down about 10 minutes ago: dashboard and API both time out. Is this emergency
maintenance? There was no notice.
== 48 general kenji | When is the next monthly maintenance?
When is the next monthly maintenance, and at what time (UTC)? I need to schedule a large
transfer and want to avoid being logged out.
== 55 technical greta <sec cc:compliance | ^
Any news on the unrecognised login? I have not heard back from compliance either.
== 62 technical maria | Is the quarterly maintenance postponed?
I read somewhere that the quarterly deep maintenance was moved. Is the date still the same?
== 68 sales omar | Pricing for API access
Is API access included in all plans or priced separately? We expect about 50,000 calls a month.
"""


def demo_window(base: datetime | None = None) -> tuple[datetime, datetime]:
    """Start and end of the maintenance window the demo mail talks about: 56 h to 52 h before
    `base` (Sunday 01:00-05:00 UTC for `DEMO_BASE`)."""
    base = _base(base)
    return base - timedelta(hours=56), base - timedelta(hours=52)


def _base(base: datetime | None) -> datetime:
    if base is None:  # three days ago, so the demo ends about now
        return clock.now().replace(second=0, microsecond=0) - timedelta(days=3)
    if base.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware one")
    return base


def demo_messages(base: datetime | None = None) -> list[tuple[str, bytes]]:
    """The demo set as (function, raw bytes), oldest first, dated from ~61 h before `base` to
    ~68 h after it. `base` defaults to three days before `db.core.clock.now()`."""
    base = _base(base)
    start, _ = demo_window(base)
    fill = {"{day}": f"{start:%A}", "{eve}": f"{start - timedelta(days=1):%A}"}
    notice = f"<notice-{start:%Y%m%d}@valuit.com>"
    rng = random.Random(2026)
    sent: dict[str, tuple[EmailMessage, str, bytes]] = {}
    out: list[tuple[str, bytes]] = []
    previous = base - timedelta(days=30)
    for index, block in enumerate(_SCRIPT.split("\n== ")[1:], start=1):
        head, _, text = block.partition("\n")
        meta, _, subject = head.partition(" | ")
        hours, function, who, *tags = meta.split()
        for key, value in fill.items():
            subject, text = subject.replace(key, value), text.replace(key, value)
        jitter = timedelta(minutes=rng.randint(0, 40), seconds=rng.randint(0, 59))
        moment = base + timedelta(hours=float(hours)) + jitter
        if moment <= previous:
            raise ValueError(f"demo script out of order at message {index}")
        previous = moment
        parent = next((sent[tag[1:]] for tag in tags if tag.startswith("<")), None)
        if "bounce" in tags and parent:
            out.append(
                (
                    function,
                    _received(function, moment).encode()
                    + _bounce(index, moment, function, parent[2]),
                )
            )
            continue
        msg, body = _compose(index, moment, function, who, subject, text, tags, parent, rng)
        if "ooo" in tags:
            msg["In-Reply-To"], msg["References"] = notice, notice
        raw = msg.as_bytes()
        for tag in tags:
            if tag.startswith("#"):
                sent[tag[1:]] = (msg, body, raw)
        out.append((function, _received(function, moment).encode() + raw))
    return out


def _received(function: str, moment: datetime) -> str:
    """The trace line our own mail server adds on delivery: when the mail really arrived."""
    arrived = format_datetime((moment + timedelta(seconds=4)).astimezone(UTC))
    return (
        f"Received: from mx.example.net by mx.valuit.com (Postfix) with ESMTPS\n"
        f"\tfor <{function}@valuit.com>; {arrived}\n"
    )


def _compose(
    index: int,
    moment: datetime,
    function: str,
    who: str,
    subject: str,
    text: str,
    tags: list[str],
    parent: tuple[EmailMessage, str, bytes] | None,
    rng: random.Random,
) -> tuple[EmailMessage, str]:
    name, addr, offset = _SENDERS[who]
    msg = EmailMessage()
    msg["From"] = Address(name, addr_spec=addr)
    team = _TEAMS[function] if index % 3 else ""
    msg["To"] = Address(team, addr_spec=f"{function}@valuit.com")
    for tag in tags:
        if tag.startswith("cc:"):
            msg["Cc"] = Address(_TEAMS[tag[3:]], addr_spec=f"{tag[3:]}@valuit.com")
    if parent:
        earlier = parent[0]
        if subject == "^":
            subject = "Re: " + str(earlier["Subject"]).removeprefix("Re: ")
        msg["In-Reply-To"] = earlier["Message-ID"]
        msg["References"] = " ".join(filter(None, (earlier["References"], earlier["Message-ID"])))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(moment.astimezone(timezone(timedelta(hours=offset))))
    msg["Message-ID"] = f"<demo-{index:02d}@{addr.partition('@')[2]}>"
    if "ooo" in tags:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Autoreply"] = "yes"
    if "html" in tags:
        msg.set_content(text.strip() + "\n", subtype="html")
        return msg, text
    body = _paragraphs(text)
    if not parent and "nosig" not in tags and not body.split("\n")[0].endswith(","):
        body = rng.choice(_GREETINGS) + "\n\n" + body
    if name and "nosig" not in tags:
        body += "\n\n" + rng.choice(_SIGNOFFS).format(first=name.split()[0], name=name)
    if parent and "quote" in tags:
        when = parent[0]["Date"].datetime
        wrote = parent[0]["From"].addresses[0].display_name
        quoted = "\n".join(f"> {line}".rstrip() for line in parent[1].splitlines())
        body += f"\n\nOn {when:%a, %d %b %Y at %H:%M}, {wrote} wrote:\n{quoted}"
    charset, cte = ("utf-8", None)
    if "qp" in tags:
        charset, cte = "iso-8859-1", "quoted-printable"
    elif "b64" in tags:
        cte = "base64"
    msg.set_content(body + "\n", charset=charset, cte=cte)
    if "pdf" in tags:
        pdf = _fake_pdf(rng)
        msg.add_attachment(pdf, "application", "pdf", filename="statement-2026-10.pdf")
        msg.set_boundary(f"==demo-{index:02d}-mixed==")
    return msg, body


def _paragraphs(text: str) -> str:
    """Rewrap the script's paragraphs at 72 columns; short lines keep their line break."""
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        lines, pending = [], ""
        for line in paragraph.splitlines():
            pending = f"{pending} {line}" if pending else line
            if len(line) < 80:
                lines.append(textwrap.fill(pending, 72))
                pending = ""
        if pending:
            lines.append(textwrap.fill(pending, 72))
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _fake_pdf(rng: random.Random) -> bytes:
    page = b"BT /F1 11 Tf 72 720 Td (Valuit statement October 2026 - closing EUR 12,480.35) Tj ET"
    stream = page + b"\n" + rng.randbytes(3500)
    return (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        + b"4 0 obj\n<< /Length %d >>\nstream\n" % len(stream)
        + stream
        + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def _bounce(index: int, moment: datetime, function: str, original: bytes) -> bytes:
    """A Postfix-style delivery status notification for `original`: `function@` is an alias and
    the copy forwarded to a former colleague bounced."""
    headers = original.split(b"\n\n", 1)[0].decode("ascii")
    boundary = f"{index:02d}.demo-bounce/mx1.example.net"
    date, lost = format_datetime(moment), "k.meyer@example.net"
    return f"""Return-Path: <>
Date: {date}
From: Mail Delivery System <MAILER-DAEMON@mx1.example.net>
To: {function}@valuit.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <demo-{index:02d}@mx1.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="{boundary}"

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{lost}> (expanded from <{function}@valuit.com>): host mx.example.net[192.0.2.25]
    said: 550 5.1.1 <{lost}>: Recipient address rejected: User unknown
    (in reply to RCPT TO command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.example.net
Arrival-Date: {date}

Final-Recipient: rfc822; {lost}
Original-Recipient: rfc822; {function}@valuit.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <{lost}>: Recipient address rejected: User unknown

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{headers}

--{boundary}--
""".encode("ascii")


# ---- generated mail for benchmarks and crash tests ------------------------------------------

_FIRST = (
    "Zoë Liam Ana Kenji Fatima Lars Chloé Mateo Ingrid Yusuf Priya Tomás Hana Oliver Amélie "
    "Noah Sofía Jakub Aiko Emeka Marta Björn Leila Ravi Şebnem Dmitri Grace Rūta Olu Mei"
)
_LAST = (
    "Müller Smith García Sato Khan Jensen Dubois Rossi Nowak Öztürk Iyer Silva Kim Brown "
    "Lefèvre Okafor Novák Ahmed Larsen Costa Fischer Haddad Walsh Łukasiewicz Nakamura Berg"
)
_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "fund.example.org")
_OFFSETS = (-8, -5, -3, 0, 1, 2, 3, 5.5, 8, 9)
_WEIGHTS = (40, 15, 10, 25, 10)  # technical, sales, compliance, general, marketing
_SUBJECTS = {
    "technical": ("Cannot {verb} my {thing}", "The {thing} is not loading since {when}",
                  "Error when I {verb} the {thing}", "My balance looks wrong after the maintenance",
                  "Duplicated transaction in my {thing}", "A transaction is missing since {when}"),
    "sales": ("Pricing for the {plan} plan ({n} seats)", "Quote request: {plan} plan",
              "Upgrade from {plan} to Enterprise", "Discount for annual billing?"),
    "compliance": ("GDPR data export request", "KYC verification pending",
                   "Request for your SOC 2 report", "Data retention question"),
    "general": ("When is the next monthly maintenance?", "The statement shows a different amount",
                "Question about my {thing}", "Is access limited during maintenance?"),
    "marketing": ("Partnership proposal", "Sponsorship opportunity", "Press enquiry",
                  "Case study participation"),
}  # fmt: skip
_SENTENCES = {
    "technical": (
        "Since {when} the {thing} shows {amount} instead of {amount2}.",
        "I have not made any transactions since {when}.",
        "The {thing} page takes more than {n} seconds to load.",
        "I already logged out and in again and cleared the browser cache.",
        'The error message says "{code}".', "The transaction reference is {ref}.",
        "It happens both in the web app and in the mobile app.",
        "I tried to {verb} the {thing} twice, with the same result.",
        "The amount of {amount} appears twice in the list.",
        "Could you confirm whether this is related to the maintenance?",
    ),
    "sales": (
        "We are a team of {n} people and are considering the {plan} plan.",
        "Is there a discount for annual billing?", "Could you send us a quote in EUR?",
        "We would need {n} seats to start with, maybe more next year.",
        "Is single sign-on included in the {plan} plan?", "Can we try it for a month first?",
    ),
    "compliance": (
        "I would like a copy of all personal data you hold about me.",
        "Please let me know which documents you need from us.",
        "How long do you retain transaction records after an account is closed?",
        "Our auditors ask for your latest SOC 2 report.",
        "Which sub-processors have access to our data?",
    ),
    "general": (
        "When is the next monthly maintenance scheduled?",
        "I need to plan a large transfer and would like to avoid the maintenance window.",
        "Could you please check what happened to my {thing}?",
        "The {thing} shows {amount}, but I expected {amount2}.",
        "Will I be logged out during the maintenance?", "Where can I find the release notes?",
    ),
    "marketing": (
        "Our team would love to explore a partnership with Valuit.",
        "Our audience is about {n},000 finance professionals.",
        "Would you be interested in a co-hosted webinar?",
        "I have attached our media kit for reference.", "Could we schedule a short call {when2}?",
    ),
    "any": (
        "This is urgent for us because our month-end close is {when2}.",
        "A colleague of mine sees exactly the same thing.", "Thanks for looking into this.",
        "Before the update everything looked fine.", "We would appreciate an answer {when2}.",
        "Please let me know if you need anything else from me.",
    ),
}  # fmt: skip
_POOLS = {function: _SENTENCES[function] + _SENTENCES["any"] for function in FUNCTIONS}
_SLOTS = {
    "thing": ("balance", "dashboard", "statement", "transaction history", "portfolio", "export",
              "invoice", "account", "API key", "report"),
    "verb": ("open", "download", "export", "update", "verify", "reset", "access"),
    "when": ("last night", "Sunday", "the maintenance", "yesterday", "this morning", "the update"),
    "when2": ("on Friday", "tomorrow", "next week", "at the end of the month"),
    "plan": ("Starter", "Professional", "Enterprise"),
    "code": ("502 Bad Gateway", "ERR_SESSION_EXPIRED", "Internal Server Error", "Invalid 2FA code"),
}  # fmt: skip
_SIZES = {
    "plain": (200, 2300),
    "alternative": (800, 6000),
    "reply": (80, 700),
    "mixed": (150, 1200),
}
_ATTACHMENTS = (("application/pdf", "statement.pdf", b"%PDF-1.4\n"),
                ("image/png", "screenshot.png", b"\x89PNG\r\n\x1a\n"),
                ("application/zip", "export.zip", b"PK\x03\x04"))  # fmt: skip
_TO = {function: formataddr((team, f"{function}@valuit.com")) for function, team in _TEAMS.items()}


class _Sent(NamedTuple):  # what a later reply needs from a generated message
    mid: str
    subject: str
    function: str
    refs: str
    person: tuple[str, str, timezone, str]
    when: datetime
    body: str


def generate(count: int, seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """Yield `count` (function, raw bytes) messages, deterministic for `seed`, in constant memory:
    ~70% short text/plain, ~15% multipart/alternative, ~8% replies quoting an earlier generated
    message, ~5% multipart/mixed with a 5-60 KB attachment, ~2% auto-replies."""
    rng = random.Random(seed)
    people = [_person(rng) for _ in range(300)]
    recent: deque[_Sent] = deque(maxlen=100)
    moment = DEMO_BASE.timestamp() - 30 * 86400
    for i in range(count):
        moment += rng.uniform(1.0, 120.0)
        roll = rng.random()
        kind = "plain" if roll < 0.70 else "alternative" if roll < 0.85 else "reply"
        kind = kind if roll < 0.93 else "mixed" if roll < 0.98 else "auto"
        parent = rng.choice(recent) if kind in ("reply", "auto") and recent else None
        slots = {key: rng.choice(values) for key, values in _SLOTS.items()}
        slots.update(n=str(rng.randint(2, 60)), ref=f"TRX-{rng.randint(10000, 99999)}",
                     amount=f"EUR {rng.randint(5, 9999)}.{rng.randint(0, 99):02d}",
                     amount2=f"EUR {rng.randint(5, 9999)}.{rng.randint(0, 99):02d}")  # fmt: skip
        if parent:  # a follow-up (or its sender's autoresponder) stays in the parent's thread
            function, person = parent.function, parent.person
            subject = "Re: " + parent.subject.removeprefix("Re: ")
        else:
            kind = "plain" if kind in ("reply", "auto") else kind
            function = rng.choices(FUNCTIONS, _WEIGHTS)[0]
            person = rng.choice(people)
            subject = rng.choice(_SUBJECTS[function]).format_map(slots)
        name, addr, tz, sender = person
        when = datetime.fromtimestamp(moment, tz)
        mid = f"<gen-{seed}-{i}.{rng.getrandbits(40):010x}@{addr.partition('@')[2]}>"
        head = _received(function, when)
        head += f"From: {sender}\nTo: {_TO[function]}\nDate: {format_datetime(when)}\n"
        head += f"Message-ID: {mid}\n"
        token = f"Account reference: VA-{seed}-{i:07d}"
        if parent and kind == "auto":
            head += f"Subject: Automatic reply: {parent.subject}\nIn-Reply-To: {parent.mid}\n"
            head += "Auto-Submitted: auto-replied\nX-Autoreply: yes\n"
            text = "I am out of the office until next week and will read your message when I am"
            yield function, _plain(head, f"{text} back.\n\n{token}")
            continue
        sign = rng.choice(_SIGNOFFS).format(first=name.split(" ")[0], name=name) if name else ""
        prose = _prose(rng, _POOLS[function], slots, rng.randint(*_SIZES[kind]))
        body = "\n\n".join([rng.choice(_GREETINGS), *prose, token, sign]).rstrip()
        refs = ""
        if parent:
            refs = " ".join([*parent.refs.split()[-8:], parent.mid])
            head += f"In-Reply-To: {parent.mid}\nReferences: {refs}\n"
            quoted = "\n".join(f"> {line}".rstrip() for line in parent.body.splitlines())
            wrote = parent.person[0] or parent.person[1]
            body += f"\n\nOn {parent.when:%a, %d %b %Y at %H:%M}, {wrote} wrote:\n{quoted}"
        head += f"Subject: {subject}\n"
        if kind == "alternative":
            raw = _alternative(head, body, slots, f"alt-{seed}-{i}")
        elif kind == "mixed":
            content_type, filename, magic = rng.choice(_ATTACHMENTS)
            data = magic + rng.randbytes(rng.randint(3700, 44000))
            raw = _mixed(head, body, content_type, filename, data, f"mixed-{seed}-{i}")
        else:
            raw = _plain(head, body)
        recent.append(_Sent(mid, subject, function, refs, person, when, body[:1500]))
        yield function, raw


def _person(rng: random.Random) -> tuple[str, str, timezone, str]:
    first, last = rng.choice(_FIRST.split()), rng.choice(_LAST.split())
    ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
    addr = f"{ascii_name.decode().lower()}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}"
    name = f"{first} {last}" if rng.random() < 0.9 else ""
    tz = timezone(timedelta(hours=rng.choice(_OFFSETS)))
    return name, addr, tz, formataddr((name, addr))


def _prose(
    rng: random.Random, pool: tuple[str, ...], slots: dict[str, str], target: int
) -> list[str]:
    """Paragraphs of 2-5 sentences, about `target` characters in all (at least one paragraph)."""
    paragraphs: list[str] = []
    size = 0
    while True:
        chosen = rng.sample(pool, rng.randint(2, 5))
        paragraph = " ".join(sentence.format_map(slots) for sentence in chosen)
        if paragraphs and size + len(paragraph) > target:
            return paragraphs
        paragraphs.append(paragraph)
        size += len(paragraph) + 2


_TEXT = "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"


def _plain(head: str, body: str) -> bytes:
    return f"{head}MIME-Version: 1.0\n{_TEXT}\n{body}\n".encode()


def _alternative(head: str, body: str, slots: dict[str, str], boundary: str) -> bytes:
    paragraphs = "".join(
        f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in body.split("\n\n")
    )
    table = (
        '<table border="1"><tr><th>Reference</th><th>Expected</th><th>Shown</th></tr>\n'
        f"<tr><td>{slots['ref']}</td><td>{slots['amount']}</td><td>{slots['amount2']}</td></tr>"
        '</table>\n<p><a href="https://app.example.com/help">Help centre</a></p>\n'
    )
    page = f"<html><body>\n{paragraphs}{table}</body></html>"
    return (
        f'{head}MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="{boundary}"\n\n'
        f"--{boundary}\n{_TEXT}\n{body}\n"
        f"--{boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
        f"\n{page}\n--{boundary}--\n"
    ).encode()


def _mixed(head: str, body: str, kind: str, name: str, data: bytes, boundary: str) -> bytes:
    encoded = base64.encodebytes(data).decode("ascii")
    return (
        f'{head}MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="{boundary}"\n\n'
        f"--{boundary}\n{_TEXT}\n{body}\n"
        f'--{boundary}\nContent-Type: {kind}; name="{name}"\n'
        f'Content-Disposition: attachment; filename="{name}"\nContent-Transfer-Encoding: base64\n'
        f"\n{encoded}--{boundary}--\n"
    ).encode()


# ---- Maildir ----------------------------------------------------------------------------------


def write_maildir(
    root: Path, messages: Iterable[tuple[str, bytes]], *, per_function: bool = True
) -> int:
    """Write `messages` as Maildir files into `root/<function>/new` (or `root/new` when not
    `per_function`), each first into `tmp/` and then renamed, so a reader never sees half a
    file. Names sort in write order. Returns how many were written."""
    root = Path(root)
    for folder in [root / function for function in FUNCTIONS] if per_function else [root]:
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    stamp = time.time_ns()
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"
    prefix = f"{stamp // 10**9}.M{stamp // 1000 % 10**6:06d}P{os.getpid()}Q"
    count = 0
    for count, (function, raw) in enumerate(messages, start=1):
        if function not in FUNCTIONS:
            raise ValueError(f"unknown function {function!r}; expected one of {FUNCTIONS}")
        folder = root / function if per_function else root
        name = f"{prefix}{count:08d}.{host}"
        with open(folder / "tmp" / name, "xb") as handle:
            handle.write(raw)
        os.rename(folder / "tmp" / name, folder / "new" / name)
    return count


def write_spool(root: Path, base: datetime | None = None) -> int:
    """Seed `root` with the demo set once: returns 0 without writing when `root/.seeded` exists,
    else writes the demo messages per function and then creates the marker."""
    marker = Path(root) / ".seeded"
    if marker.exists():
        return 0
    count = write_maildir(Path(root), demo_messages(base))
    marker.write_text(f"{count} demo messages, {clock.now_iso()}\n")
    return count


def record_demo_window(database: Path, base: datetime | None = None) -> None:
    """The completed monthly window the demo mail talks about, so the desk links the tickets
    sent during it and the discrepancy reports after it."""
    start, end = demo_window(base)
    db = open_db(database)
    with write(db):
        windows.insert(
            db,
            title="Monthly maintenance: ledger and statements",
            kind="monthly",
            update_type="performance",
            start=start,
            end=end,
            zone="UTC",
            actor="demo",
            features=("Transfers", "Statements", "API"),
            announced=True,
            description="Routine database maintenance and statement service upgrade.",
        )
    db.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m ingest.demo DIR [DATABASE]`: seed DIR with the demo set once (and record its
    maintenance window in DATABASE); `python -m ingest.demo DIR COUNT [SEED]`: write COUNT
    generated messages."""
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 3:
        print(main.__doc__, file=sys.stderr)
        return 2
    root = Path(args[0])
    if len(args) == 1 or not args[1].isdigit():
        written = write_spool(root)
        if written and len(args) == 2:
            record_demo_window(Path(args[1]))
        print(f"{written} demo messages written to {root}")
    else:
        seed = int(args[2]) if len(args) > 2 else 7
        print(f"{write_maildir(root, generate(int(args[1]), seed))} messages written to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
