from odoo import api, models


class CrmDealConfigMixin(models.AbstractModel):
    """Configuration the deal engine caches: changing it clears the caches.

    The hot paths read the scripts' structure, the shipped rules, the
    activity types' texts and the templates' documents through registry
    caches (``crm.deal.script._deal_config``, ``_deal_step_names``,
    ``base.automation._deal_engine_rules``, ``mail.template._deal_has_documents``
    ...). Each configuration model lists this mixin in its ``_inherit``.

    The caches are cleared before and after the change: what another request
    read while it was being written is outdated too.
    """

    _name = "crm.deal.config.mixin"
    _description = "Deal Engine Configuration"

    # fields whose writes change what the engine caches (None: every field)
    _deal_config_fields = None

    def _deal_is_config(self):
        """Whether the records ``self`` (the model, for a create) are cached
        configuration; a model caching only some of its records says which."""
        return True

    def _deal_config_changed(self, vals):
        fields = self._deal_config_fields
        return (fields is None or not fields.isdisjoint(vals)) and self._deal_is_config()

    def _deal_clear_caches(self):
        self.env.registry.clear_cache()

    @api.model_create_multi
    def create(self, vals_list):
        if self._deal_is_config():
            self._deal_clear_caches()
        records = super().create(vals_list)
        if records._deal_is_config():
            self._deal_clear_caches()
        return records

    def write(self, vals):
        changed_before = self._deal_config_changed(vals)
        if changed_before:
            self._deal_clear_caches()
        result = super().write(vals)
        if changed_before or self._deal_config_changed(vals):
            self._deal_clear_caches()
        return result

    def unlink(self):
        config = self._deal_is_config()
        if config:
            self._deal_clear_caches()
        result = super().unlink()
        if config:
            self._deal_clear_caches()
        return result

    def _update_field_translations(self, field_name, translations, digest=None, source_lang=""):
        # names and texts are cached per language (e.g. _deal_step_names)
        result = super()._update_field_translations(
            field_name, translations, digest=digest, source_lang=source_lang
        )
        if self._deal_config_changed({field_name}):
            self._deal_clear_caches()
        return result
