import json

from odoo import api, models
from odoo.tools import SQL


class CrmDealScriptDefinitionTranslationMixin(models.AbstractModel):
    """The texts of the process file in every language (mixed into the file's
    model, ``crm.deal.script.definition.mixin``): the translations of a
    script, its steps, checklist items and activity templates, read and
    written as stored (whole values, HTML included), and the languages a
    file names checked against Odoo's."""

    _name = "crm.deal.script.definition.translation.mixin"
    _description = "Deal Script Definition File: Translations"

    # ------------------------------------------------------------
    # AS STORED: whole values per language, read and written in SQL
    # ------------------------------------------------------------

    @api.model
    def _deal_stored_translations(self, records):
        """{(model, id): {lang: {field: text}}}: the translations of the
        translatable texts of ``records`` that differ from the English text,
        as stored (one query for the records of one model)."""
        names = [name for name, field in records._fields.items() if field.translate and field.store]
        if not records or not names:
            return {}
        records.flush_recordset(names)
        self.env.cr.execute(
            SQL(
                "SELECT id, %s FROM %s WHERE id IN %s",
                SQL(", ").join(SQL.identifier(name) for name in names),
                SQL.identifier(records._table),
                tuple(records.ids),
            )
        )
        result = {}
        for row in self.env.cr.fetchall():
            by_lang = {}
            for name, values in zip(names, row[1:], strict=True):
                source = (values or {}).get("en_US")
                for lang, text in (values or {}).items():
                    if lang != "en_US" and text and text != source:
                        by_lang.setdefault(lang, {})[name] = text
            if by_lang:
                # field order as the file lists them, languages sorted
                result[records._name, row[0]] = {
                    lang: {name: by_lang[lang][name] for name in names if name in by_lang[lang]}
                    for lang in sorted(by_lang)
                }
        return result

    @api.model
    def _deal_store_translations(self, record, by_field):
        """Add the translations ``by_field`` ({field: {lang: text}}) to the
        stored texts of ``record``, as ``_deal_stored_translations`` reads
        them: whole values, the English text kept (HTML texts included,
        which Odoo's term-by-term API would split)."""
        record.flush_recordset(list(by_field))
        self.env.cr.execute(
            SQL(
                "UPDATE %s SET %s WHERE id = %s",
                SQL.identifier(record._table),
                SQL(", ").join(
                    SQL(
                        "%s = COALESCE(%s, '{}'::jsonb) || %s::jsonb",
                        SQL.identifier(name),
                        SQL.identifier(name),
                        json.dumps(values),
                    )
                    for name, values in by_field.items()
                ),
                record.id,
            )
        )
        record.invalidate_recordset(list(by_field))

    # ------------------------------------------------------------
    # IN THE FILE: the translations key, its languages, the new draft's texts
    # ------------------------------------------------------------

    @api.model
    def _deal_translations_entry(self, translations, record):
        """The ``translations`` key of ``record`` in the file (none when empty)."""
        texts = translations.get((record._name, record.id))
        return {"translations": texts} if texts else {}

    def _deal_check_languages(self, document, messages):
        """A translation in a language Odoo does not know (a typo) is a problem."""
        objects = [document["script"]]
        for step in document["steps"]:
            objects += [step, *step["checks"], *step["activities"]]
        langs = {lang for data in objects for lang in data["translations"]}
        if not langs:
            return
        known = set(
            self.env["res.lang"]
            .with_context(active_test=False)
            .search([("code", "in", list(langs))])
            .mapped("code")
        )
        for lang in sorted(langs - known):
            messages.append(
                self.env._("Unknown language “%(lang)s” in the translations.", lang=lang)
            )

    def _deal_import_translations(self, draft, document):
        """Give the texts of the new draft the file's translations (a language
        not active yet keeps them: they show once it is activated)."""
        targets = [(draft, document["script"])]
        for step, step_data in zip(
            draft.step_ids.sorted(lambda s: (s.sequence, s.id)), document["steps"], strict=True
        ):
            targets.append((step, step_data))
            checks = step.check_ids.sorted(lambda c: (c.sequence, c.id))
            targets += zip(checks, step_data["checks"], strict=True)
            activities = step.activity_template_ids.sorted(lambda a: (a.sequence, a.id))
            targets += zip(activities, step_data["activities"], strict=True)
        for record, data in targets:
            by_field = {}
            for lang, texts in data["translations"].items():
                for name, text in texts.items():
                    field = record._fields[name]
                    if field.type == "html":
                        # stored as is below: cleaned as the ORM cleans the
                        # English text (no script in a reader's browser)
                        text = field.convert_to_cache(text, record) or ""
                    by_field.setdefault(name, {})[lang] = text
            if by_field:
                self._deal_store_translations(record, by_field)
