"""The simulated phones and what Vibes does with what they text.

A phone replies to a confirmation ("Y" confirms, "N" blocks the campaign
for the number), texts "STOP" (opted out of every list), or joins a list by
an acquisition campaign's keyword. Whatever a phone texts to the short code
is also posted to the app as Connect's `inbound_sms`, and, when it matches
no pending confirmation and no system keyword (STOP, HELP...), as the
Platform's `unmatched_message_received`, both with the same message id.

A pending participant who does not answer within the confirmation window
expires: Vibes drops the request and posts `ack_participant_changed` with
status "expired".
"""

from .protocol import E164, now_iso

YES_WORDS = {"Y", "YES"}
NO_WORDS = {"N", "NO"}
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
# Vibes answers these itself, so they are never "unmatched".
HELP_WORDS = {"HELP", "INFO"}


class SimulatedPhones:
    """Part of VibesSimulator: its state (`state`), lock, and callbacks out (`_callback`, `_poster`)."""

    def reply(self, mdn: str, text: str) -> dict:
        """The phone with this number texts `text` to the short code.

        Vibes acts on what it matches (a Y or N to a pending confirmation,
        a STOP) and, as Vibes does, every text is posted to the app as an
        inbound message; one that matched nothing also as an unmatched
        message. The answer says what matched, with the message's id.
        """
        if not E164.match(mdn or ""):
            raise ValueError(f"{mdn!r} is not a number in E.164 form.")
        with self._lock:
            answer = self._act_on_text(mdn, (text or "").strip().upper())
            unmatched = not answer
            message = {
                "message_id": f"SIM-MO-{next(self.state.inbound_seq):09d}",
                "mdn": mdn,
                "text": text or "",
                "unmatched": unmatched,
                "received_at": now_iso(),
            }
            self.state.inbound.append(message)
            self._post_inbound(message)
            return {**answer, "message_id": message["message_id"], "unmatched": unmatched}

    def keyword(self, mdn: str, keyword: str) -> dict:
        """The phone with this number texts an acquisition campaign's keyword and joins its list.

        Most people join this way: Vibes then knows their number but no
        external person id. A keyword is its own consent, so there is no
        confirmation; Vibes posts `subscription_added`.
        """
        word = (keyword or "").strip().upper()
        with self._lock:
            if not E164.match(mdn or ""):
                raise ValueError(f"{mdn!r} is not a mobile number in E.164 form.")
            campaign = self.state.campaign_with_keyword(word)
            if campaign is None:
                raise LookupError(f"No active acquisition campaign has the keyword {word!r}.")
            list_id = campaign["list_id"]
            if self.state.subscribed(list_id, mdn):
                return {"list_id": list_id, "joined": False}
            self.state.pending.pop((list_id, mdn), None)
            self.state.subscribe_now(list_id=list_id, mdn=mdn)
            self._post_subscription_added(list_id, mdn, campaign["acquisition_id"])
            return {"list_id": list_id, "joined": True}

    def _act_on_text(self, mdn, word) -> dict:
        """What Vibes does with a text; {} when it matches nothing."""
        state = self.state
        if word in HELP_WORDS:
            return {"help": True}
        if word in STOP_WORDS:
            for key in [k for k in state.pending if k[1] == mdn]:
                del state.pending[key]
            opted_out = [
                list_id
                for (list_id, number), sub in state.subscriptions.items()
                if number == mdn and not sub.get("opt_out_date")
            ]
            for list_id in opted_out:
                self._opt_out(list_id, mdn, "user_opt_out")
            return {"opted_out": opted_out}
        if mdn not in state.persons:
            return {}
        if word in YES_WORDS:
            confirmed = [list_id for (list_id, number) in list(state.pending) if number == mdn]
            for list_id in confirmed:
                self._confirm(list_id, mdn)
            return {"confirmed": confirmed} if confirmed else {}
        if word in NO_WORDS:
            declined = []
            for (list_id, number), pending in list(state.pending.items()):
                if number == mdn:
                    del state.pending[(list_id, number)]
                    state.blocks.add((pending["acquisition_id"], mdn))
                    declined.append(list_id)
                    self._post_participant_changed(list_id, mdn, pending, "declined")
            return {"declined": declined} if declined else {}
        return {}

    def _confirm(self, list_id, mdn, generation=None):
        with self._lock:
            if generation is not None and generation != self._generation:
                return  # scheduled before a reset
            pending = self.state.pending.pop((list_id, mdn), None)
            if pending is None:
                return
            self.state.subscriptions[(list_id, mdn)] = {"opt_in_date": now_iso()}
            self.state.join(list_id, mdn)
            self._post_subscription_added(list_id, mdn, pending["acquisition_id"])

    def _expire(self, list_id, mdn, pending, generation):
        """The confirmation window ended without a reply: Vibes drops the request."""
        with self._lock:
            if generation != self._generation or self.state.pending.get((list_id, mdn)) is not pending:
                return  # answered, cancelled, asked again, or scheduled before a reset
            del self.state.pending[(list_id, mdn)]
            self._post_participant_changed(
                list_id, mdn, pending, "expired", expire_date=pending["expire_date"]
            )

    def _opt_out(self, list_id, mdn, reason):
        sub = self.state.subscriptions[(list_id, mdn)]
        sub["opt_out_date"] = now_iso()
        sub["opt_out_reason"] = reason
        self.state.leave(list_id, mdn)
        self._callback(
            "subscription_removed",
            {
                **self.state.person_resource(mdn),
                "subscription_list": self.state.list_ref(list_id),
                "opt_in_date": sub["opt_in_date"],
                "opt_out_date": sub["opt_out_date"],
                "opt_out_reason": reason,
            },
        )

    def _post_subscription_added(self, list_id, mdn, acquisition_id):
        self._callback(
            "subscription_added",
            {
                **self.state.person_resource(mdn),
                "subscription_list": self.state.list_ref(list_id),
                "opt_in_date": self.state.subscriptions[(list_id, mdn)]["opt_in_date"],
                "acquisition_campaign": {"acquisition_id": acquisition_id},
            },
        )

    def _post_participant_changed(self, list_id, mdn, pending, status, **dates):
        self._callback(
            "ack_participant_changed",
            {
                **self.state.person_resource(mdn),
                "acquisition_campaign": {"acquisition_id": pending["acquisition_id"]},
                "subscription_list": self.state.list_ref(list_id),
                "participation_date": pending["participation_date"],
                **dates,
                "status": status,
            },
        )

    def _post_inbound(self, message):
        """Connect's inbound SMS, and the Platform's unmatched message when nothing matched."""
        url = self.config["callback_url"]
        if not (url and self._poster):
            return
        # Connect names the callback in the body (its `callback_type`), as its receipts do.
        self._poster.put(
            url,
            "inbound_sms",
            {
                "callback_type": "inbound_sms",
                "message_id": message["message_id"],
                "from": message["mdn"],
                "to": self.short_code,
                "text": message["text"],
                "occurred_at": message["received_at"],
            },
            header_event_type=False,
        )
        if message["unmatched"]:
            # The body of Vibes' documented example; the type also travels in a header.
            self._callback(
                "unmatched_message_received",
                {
                    "event_id": f"SIM-EVT-{message['message_id']}",
                    "callback_type": "unmatched_message_received",
                    "event_date": message["received_at"][:19] + "Z",
                    "participant": {"mdn": message["mdn"], "carrier_id": "104"},
                    "source_code": {
                        "company_key": self.company_key,
                        "code": self.short_code,
                        "country_code": "1",
                        "code_type": "SC",
                        "default_response": "",
                        "response_sent": False,
                    },
                    "message": message["text"],
                    "message_id": message["message_id"],
                    "txn_id": f"SIM-TXN-{message['message_id']}",
                    "receipt_date": message["received_at"],
                },
            )
