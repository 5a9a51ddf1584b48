"""A real SMTP server process for Guichet's tests, built on Debian's python3-aiosmtpd.

The aiosmtpd command line covers plain SMTP, STARTTLS and implicit TLS but not
authentication or a slow relay, so the tests start this script instead. Every message
the server accepts lands in MAILDIR/new, as with aiosmtpd's Mailbox handler.

    smtp_server.py PORT MAILDIR [--starttls CERT KEY] [--smtps CERT KEY]
                   [--auth USER:PASSWORD] [--rcpt-delay SECONDS] [--data-delay SECONDS]
"""

import argparse
import asyncio
import mailbox
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    """Keeps each message once the DATA step completes, answering slowly if asked.

    Like a real relay, a message whose final "." arrived is kept even if the client
    goes away before the 250 reply; a client that goes away earlier (during a slow
    RCPT, say) leaves nothing.
    """

    def __init__(self, path, rcpt_delay, data_delay):
        self.box = mailbox.Maildir(path, create=True)
        self.rcpt_delay = rcpt_delay
        self.data_delay = data_delay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.sleep(self.rcpt_delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # Kept first: aiosmtpd cancels a handler whose client went away, and a
        # relay that has the final "." has the message.
        self.box.add(envelope.original_content or envelope.content)
        await asyncio.sleep(self.data_delay)
        return "250 Message accepted for delivery"


def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def authenticator(expected):
    user, _, password = expected.partition(":")

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd answers a refusal with 535 itself.
        return AuthResult(success=ok, handled=False)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("maildir")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    parser.add_argument("--rcpt-delay", type=float, default=0.0)
    parser.add_argument("--data-delay", type=float, default=0.0)
    args = parser.parse_args()

    handler = Store(args.maildir, args.rcpt_delay, args.data_delay)
    options = {}
    if args.starttls:
        options.update(tls_context=tls_context(*args.starttls), require_starttls=True)
    if args.auth:
        options.update(
            authenticator=authenticator(args.auth),
            auth_required=True,
            # Under implicit TLS aiosmtpd does not see a STARTTLS layer; the whole
            # connection is encrypted already.
            auth_require_tls=not args.smtps,
        )
    implicit = tls_context(*args.smtps) if args.smtps else None

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, hostname="smtp.test", **options),
            host="127.0.0.1",
            port=args.port,
            ssl=implicit,
        )
    )
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
