from odoo import api, models
from odoo.exceptions import ValidationError

# field types whose values are converted (and refused) by trying Odoo's own
# conversion; the others are checked by shape below
CONVERTED_TYPES = {"integer", "float", "monetary", "selection", "date", "datetime"}
TEXT_TYPES = {"char", "text", "html"}


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
    # values checked as an RPC client sends them (the addon's own models; not
    # the Odoo models that list this mixin)
    _deal_verify_input = False

    def _deal_is_config(self):
        """Whether the records ``self`` (the model, for a create) are cached
        configuration; a model caching only some of its records says which."""
        return True

    def _deal_config_changed(self, vals):
        fields = self._deal_config_fields
        return (fields is None or not fields.isdisjoint(vals)) and self._deal_is_config()

    def _deal_clear_caches(self):
        self.env.registry.clear_cache()

    @api.model
    def _deal_verified_input(self, vals_list):
        """``vals_list`` with every value of the wrong kind refused with a
        message naming the field, as an RPC client may send it: Odoo would
        answer a traceback (text for a number), or store nothing without a
        word (text for a record: an empty stage). Ids given as numeric text
        become numbers."""
        if not self._deal_verify_input:
            return vals_list
        checked = []
        for vals in vals_list:
            vals = dict(vals)
            for name, value in vals.items():
                field = self._fields.get(name)
                if field is not None and value is not None and value is not False:
                    vals[name] = self._deal_verified_value(field, value)
            checked.append(vals)
        return checked

    def _deal_verified_value(self, field, value):
        expected = None
        if field.type == "many2one":
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            # a record, a new record's values, (id, name) as read() returns it
            if not (
                _is_id(value)
                or isinstance(value, (models.BaseModel, dict))
                or (isinstance(value, tuple) and value and _is_id(value[0]))
            ):
                expected = self.env._("the id of a record (a number)")
        elif field.type in ("one2many", "many2many"):
            if not isinstance(value, models.BaseModel) and not _is_x2many_value(value):
                expected = self.env._("a list of record ids or of commands")
        elif field.type in TEXT_TYPES:
            if isinstance(value, (dict, list, tuple, set)):
                expected = self.env._("a text")
        elif field.type in CONVERTED_TYPES:
            try:
                field.convert_to_cache(value, self)
            except (TypeError, ValueError, OverflowError):
                expected = self._deal_expected_value(field)
        if expected:
            raise ValidationError(
                self.env._(
                    "%(value)s is not a valid value for “%(field)s”: give %(expected)s.",
                    value=repr(value)[:50],
                    field=field._description_string(self.env),
                    expected=expected,
                )
            )
        return value

    def _deal_expected_value(self, field):
        if field.type == "selection":
            return self.env._(
                "one of: %(values)s",
                values=", ".join(str(key) for key in field.get_values(self.env)),
            )
        if field.type == "date":
            return self.env._("a date (YYYY-MM-DD)")
        if field.type == "datetime":
            return self.env._("a date and time (YYYY-MM-DD HH:MM:SS)")
        return self.env._("a number")

    @api.model_create_multi
    def create(self, vals_list):
        vals_list = self._deal_verified_input(vals_list)
        if self._deal_is_config():
            self._deal_clear_caches()
        records = super().create(vals_list)
        if records._deal_is_config():
            self._deal_clear_caches()
        return records

    def write(self, vals):
        vals = self._deal_verified_input([vals])[0]
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


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_x2many_value(value):
    """A list of ids or of ORM commands ``(op, id, values or ids)``."""
    if not isinstance(value, (list, tuple)):
        return False
    for item in value:
        if _is_id(item):
            continue
        if not (isinstance(item, (list, tuple)) and item and _is_id(item[0]) and 0 <= item[0] <= 6):
            return False
        op = item[0]
        if op in (1, 2, 3, 4) and not (len(item) > 1 and _is_id(item[1])):
            return False
        if op in (0, 1) and not (len(item) > 2 and isinstance(item[2], dict)):
            return False
        if op == 6 and not (
            len(item) > 2
            and isinstance(item[2], (list, tuple, models.BaseModel))
            and all(_is_id(id_) or isinstance(id_, models.BaseModel) for id_ in item[2])
        ):
            return False
    return True
