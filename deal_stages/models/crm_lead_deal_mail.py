"""Deal feature: what Odoo's tracking messages of the moved deals ask at the
commit (reply-to, alias domain), asked once for all of them."""

from odoo import models


class CrmLeadDealMail(models.AbstractModel):
    """Memo of the mail answers asked deal by deal when the tracking messages
    are posted (the commit's precommit hooks). ``crm.lead``'s overrides
    ``_notify_get_reply_to`` and ``_mail_get_alias_domains`` read it through
    ``_deal_mail_memoized``; the engine registers the deals it moved with
    ``_deal_prepare_tracking_messages``."""

    _name = "crm.lead.deal.mail"
    _description = "Deal: Mail of the Tracking Messages"

    def _deal_mail_memo(self, kind):
        """{key: value} remembered until the tracking messages are posted (the
        commit's precommit hooks), see ``_notify_get_reply_to``."""
        cache = self.env.cr.cache
        memo = cache.get("deal_stages_mail_memo")
        if memo is None:
            memo = cache["deal_stages_mail_memo"] = {}
            # after Odoo's tracking (an earlier hook of the transaction)
            self.env.cr.precommit.add(lambda: cache.pop("deal_stages_mail_memo", None))
        return memo.setdefault(kind, {})

    def _deal_mail_memoized(self, kind, key_of, compute):
        """``{lead id: value}`` for the deals ``self``; what is not known yet
        is computed in one batch (``compute(deals)``) with the other deals the
        engine moved (``_deal_prepare_tracking_messages``)."""
        memo = self._deal_mail_memo(kind)
        keys = {lead.id: key_of(lead) for lead in self}
        if all(key in memo for key in keys.values()):
            return {lead_id: memo[key] for lead_id, key in keys.items()}
        todo = self
        batch_ids = self._deal_mail_memo("batch")
        # a deal the engine moved (its tracking message): all of them at once
        batch = self.browse()
        if all(id_ in batch_ids for id_ in self._ids):
            # deals of the batch removed since are left out (no error)
            batch = (self.browse(batch_ids) - self).exists()
        if batch:
            keys.update({lead.id: key_of(lead) for lead in batch})
            todo |= batch.filtered(lambda lead: keys[lead.id] not in memo)
        todo = todo.filtered(lambda lead: keys[lead.id] not in memo)
        computed = compute(todo)
        for lead in todo:
            memo[keys[lead.id]] = computed[lead.id]
        return {lead.id: memo[keys[lead.id]] for lead in self}

    def _deal_prepare_tracking_messages(self):
        """Let the first tracking message of the deals moved by the engine
        ask, for all of them at once, what each asks deal by deal at the
        commit (see ``_notify_get_reply_to``): no query here."""
        self._deal_mail_memo("batch").update(dict.fromkeys(self.ids))
