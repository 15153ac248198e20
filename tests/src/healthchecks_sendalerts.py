# Healthchecks' own alert loop, run once to completion: the oracle side of the differential
# notification test (tests/it/conformance_notifications.rs). Loaded by tests/src/healthchecks.rs.
#
# It calls the real `sendalerts` command's steps in its order (checks going down, then
# unprocessed flips oldest first) but serially and until nothing is left, instead of looping
# forever with a thread pool. Mail is sent synchronously (Healthchecks' BLOCKING_EMAILS, as in
# its own tests). The public API hosts Healthchecks hard-codes (Telegram, Pushover) are
# replaced by the recorder given as the first argument; that is the only change to its code.
import sys

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.utils.timezone import now  # noqa: E402

settings.BLOCKING_EMAILS = True

from hc.api.management.commands.sendalerts import Command, notify  # noqa: E402
from hc.api.models import Flip  # noqa: E402
from hc.integrations.po.transport import Pushover  # noqa: E402
from hc.integrations.telegram.transport import Telegram  # noqa: E402

recorder = sys.argv[1].rstrip("/")
Telegram.SM = f"{recorder}/bot{settings.TELEGRAM_TOKEN}/sendMessage"
Pushover.URL = f"{recorder}/1/messages.json"
Pushover.CANCEL_TMPL = recorder + "/1/receipts/cancel_by_tag/%s.json"

command = Command()
while command.handle_going_down():
    pass

while True:
    flip = Flip.objects.filter(processed=None).order_by("id").first()
    if flip is None:
        break
    Flip.objects.filter(id=flip.id).update(processed=now())
    if logs := notify(flip):
        print(logs, flush=True)
