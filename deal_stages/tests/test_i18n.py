import re
from pathlib import Path

import polib

from odoo.modules.module import get_module_path
from odoo.tests import TransactionCase, tagged
from odoo.tools.translate import TranslationModuleReader

# Python (%(name)s, %s) and JavaScript/QWeb ({{ x }}, {name}) placeholders
PLACEHOLDER = re.compile(r"%\(\w+\)[sdf]|%[sdf]|\{\{.*?\}\}|\{\w+\}")


@tagged("post_install", "-at_install")
class TestTranslations(TransactionCase):
    """Every installed deal_stages addon ships a current template and a full
    Russian translation: a term missing from either shows in English to the
    customer's users."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.modules = cls.env["ir.module.module"].search(
            [("name", "=like", "deal\\_stages%"), ("state", "=", "installed")]
        )

    def _i18n(self, module, filename):
        path = Path(get_module_path(module)) / "i18n" / filename
        self.assertTrue(path.is_file(), f"{module}: {path} is missing")
        return polib.pofile(str(path))

    def test_template_is_current(self):
        """The .pot holds exactly the terms Odoo exports from the installed addon."""
        self.assertIn("deal_stages", self.modules.mapped("name"))
        for module in self.modules.mapped("name"):
            with self.subTest(module=module):
                exported = {
                    source
                    for source_module, _type, _name, _res_id, source, _value, _comments in (
                        TranslationModuleReader(self.env.cr, modules=[module])
                    )
                    if source_module == module
                }
                shipped = {entry.msgid for entry in self._i18n(module, f"{module}.pot")}
                self.assertFalse(
                    sorted(exported - shipped),
                    f"{module}: terms missing from the .pot (regenerate it)",
                )
                self.assertFalse(
                    sorted(shipped - exported),
                    f"{module}: stale terms in the .pot (regenerate it)",
                )

    def test_russian_is_complete(self):
        """Every term of the .pot has a Russian translation with the same placeholders."""
        for module in self.modules.mapped("name"):
            with self.subTest(module=module):
                template = self._i18n(module, f"{module}.pot")
                russian = {
                    entry.msgid: entry
                    for entry in self._i18n(module, "ru.po")
                    if not entry.obsolete
                }
                untranslated = [
                    entry.msgid
                    for entry in template
                    if entry.msgid not in russian
                    or not russian[entry.msgid].msgstr.strip()
                    or "fuzzy" in russian[entry.msgid].flags
                ]
                self.assertFalse(untranslated, f"{module}: untranslated in ru.po")
                broken = [
                    msgid
                    for msgid, entry in russian.items()
                    if entry.msgstr
                    and sorted(PLACEHOLDER.findall(msgid))
                    != sorted(PLACEHOLDER.findall(entry.msgstr))
                ]
                self.assertFalse(broken, f"{module}: placeholders differ in ru.po")

    def test_records_are_named(self):
        """A record's term (a view's text, a field's label) is translated for
        the records its entry names, not by its text alone: a view or a field
        missing from its entry's references shows in English (the publish
        wizard's "Cancel", the analyses' "Version" and "Step Key")."""
        for module in self.modules.mapped("name"):
            with self.subTest(module=module):
                exported = {
                    (source, f"{kind}:{name}:{xmlid}")
                    for source_module, kind, name, xmlid, source, _value, _comments in (
                        TranslationModuleReader(self.env.cr, modules=[module])
                    )
                    if source_module == module and kind in ("model", "model_terms")
                }
                for filename in (f"{module}.pot", "ru.po"):
                    named = {
                        (entry.msgid, occurrence)
                        for entry in self._i18n(module, filename)
                        for occurrence, _line in entry.occurrences
                    }
                    self.assertFalse(
                        sorted(exported - named),
                        f"{module}: records missing from the references of {filename}",
                    )

    def test_quotes_are_closed_in_each_term(self):
        """A term opens and closes its quotes: a template's text cut around a
        name ("Customer message “" + name + "” (") left the closing quote out
        of any term, and Russian read «name”."""
        for module in self.modules.mapped("name"):
            with self.subTest(module=module):
                unbalanced = [
                    entry.msgid
                    for entry in self._i18n(module, "ru.po")
                    if entry.msgid.count("“") != entry.msgid.count("”")
                    or entry.msgstr.count("«") != entry.msgstr.count("»")
                ]
                self.assertFalse(unbalanced, f"{module}: a quote left open in ru.po")

    def test_tooltips_are_translated(self):
        """A term's tooltip and screen-reader label speak Russian too (the
        portal's "Download" tooltip, the cards' icons were read in English)."""
        attribute = re.compile(r'(?:title|aria-label|alt)="([^"]*[A-Za-z][^"]*)"')
        for module in self.modules.mapped("name"):
            with self.subTest(module=module):
                english = [
                    entry.msgid
                    for entry in self._i18n(module, "ru.po")
                    if set(attribute.findall(entry.msgid)) & set(attribute.findall(entry.msgstr))
                ]
                self.assertFalse(english, f"{module}: tooltips left in English in ru.po")
