import json
from urllib.parse import urlsplit

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, ValidationError

from ..tools import ensure_one
from ..tools import handoff as handoff_tools


class HandoffEndpointConfig:
    """What the move that writes a hand-off needs of its endpoint, as plain
    data cached across requests (``crm.deal.handoff.endpoint._deal_endpoint_config``):
    one attribute per field of ``_deal_config_fields``, plus ``id``."""

    def __init__(self, endpoint, field_names):
        self.id = endpoint.id
        for name in field_names:
            value = endpoint[name]
            setattr(self, name, value.id if isinstance(value, models.BaseModel) else value)


class CrmDealHandoffEndpoint(models.Model):
    """Where the hand-offs of a step go: an accounting program's or a
    production system's HTTP service (1C:Enterprise, an ERP, ...)."""

    _name = "crm.deal.handoff.endpoint"
    # the moves read the endpoints' settings from a cache (_deal_endpoint_config)
    _inherit = ["crm.deal.config.mixin"]
    _description = "Deal Hand-off Endpoint"
    _deal_verify_input = True
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    url = fields.Char(
        string="URL",
        required=True,
        help="The receiver's address; it gets each hand-off as a signed JSON POST.",
    )
    timeout = fields.Integer(
        string="Timeout (seconds)",
        default=10,
        help="How long one request may take before it counts as failed and is retried.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Responsible",
        domain="[('share', '=', False)]",
        check_company=True,
        help="Gets an activity on the deal when one of its hand-offs fails or is "
        "given up; empty: the deal's salesperson.",
    )
    # readable by administrators only: whoever reads them can forge hand-offs
    secret = fields.Char(
        string="Signing Secret",
        groups="base.group_system",
        copy=False,
        default=lambda self: handoff_tools.new_secret(),
        help="Standard Webhooks secret (whsec_<base64>): the receiver checks the "
        "webhook-signature header with it.",
    )
    secret_previous = fields.Char(
        string="Previous Secret",
        groups="base.group_system",
        copy=False,
        help="During a rotation: requests are signed with both secrets until the "
        "receiver uses the new one; then clear this field.",
    )
    extra_headers = fields.Text(
        groups="base.group_system",
        help='Extra HTTP headers as a JSON object, e.g. {"Authorization": "Basic ..."} '
        "for a 1C HTTP service.",
    )
    send_customer = fields.Boolean(
        string="Customer", default=True, help="The customer with its tax ids and addresses."
    )
    send_amount = fields.Boolean(
        string="Amount", default=True, help="The expected revenue and its currency."
    )
    send_changes = fields.Boolean(
        string="Order Changes", default=True, help="The order changes applied to the deal."
    )
    retry_delays = fields.Char(
        default="1m, 5m, 15m, 1h, 6h, 1d",
        help="Waits before each new attempt (s, m, h, d); the last one repeats.",
    )
    max_attempts = fields.Integer(
        default=handoff_tools.DEFAULT_MAX_ATTEMPTS,
        help="After this many attempts a hand-off is given up (dead).",
    )
    handoff_count = fields.Integer(string="Hand-offs", compute="_compute_handoff_count")

    _timeout_positive = models.Constraint(
        "CHECK(timeout > 0 AND timeout <= 300)",
        "The timeout of an endpoint is between 1 and 300 seconds.",
    )
    _max_attempts_positive = models.Constraint(
        "CHECK(max_attempts > 0)",
        "An endpoint needs at least one attempt.",
    )

    def write(self, vals):
        if "url" in vals and not (self.env.su or self.env.user.has_group("base.group_system")):
            # the requests carry the endpoint's secret and extra headers (the
            # receiver's credentials), which only administrators read: whoever
            # points an endpoint elsewhere receives them
            moved = self.filtered(lambda endpoint: endpoint.url != vals["url"])
            if moved:
                raise AccessError(
                    self.env._(
                        "Only administrators (Settings) may change the URL of the endpoint "
                        "%(name)s: its requests carry its secret and headers. Create a new "
                        "endpoint instead.",
                        name=moved[0].display_name,
                    )
                )
        return super().write(vals)

    @api.constrains("url")
    def _check_url(self):
        for endpoint in self:
            if not (endpoint.url or "").lower().startswith(("http://", "https://")):
                raise ValidationError(
                    self.env._(
                        "The URL of the endpoint %(name)s must start with http:// or https://.",
                        name=endpoint.name,
                    )
                )
            try:
                parts = urlsplit(endpoint.url)
                userinfo = parts.username is not None or parts.password is not None
            except ValueError:
                userinfo = "@" in endpoint.url.split("/", 3)[2]
            if userinfo:
                # everyone who sees the deals reads the URL: the receiver's
                # credentials go in the extra headers (administrators only)
                raise ValidationError(
                    self.env._(
                        "The URL of the endpoint %(name)s must not hold a user name or "
                        "password: put them in the extra headers (Authorization), which "
                        "only administrators read.",
                        name=endpoint.name,
                    )
                )

    @api.constrains("secret", "secret_previous")
    def _check_secret(self):
        for endpoint in self.sudo():
            secrets = [endpoint.secret or ""]
            if endpoint.secret_previous:
                secrets.append(endpoint.secret_previous)
            for secret in secrets:
                try:
                    handoff_tools.check_secret(secret)
                except ValueError as error:
                    raise ValidationError(
                        self.env._(
                            "The signing secret of the endpoint %(name)s is not in the "
                            "Standard Webhooks form whsec_<base64>: %(error)s.",
                            name=endpoint.name,
                            error=error,
                        )
                    ) from error

    @api.constrains("extra_headers")
    def _check_extra_headers(self):
        for endpoint in self.sudo():
            try:
                endpoint._handoff_extra_headers()
            except handoff_tools.HeaderError as error:
                # named, never quoted: the value is often a credential
                raise ValidationError(
                    self.env._(
                        "The extra header “%(header)s” of the endpoint %(name)s cannot be sent "
                        "over HTTP: its name takes letters, digits and dashes, its value "
                        "printable ASCII characters, without line breaks or spaces around.",
                        header=error.name[:80],
                        name=endpoint.name,
                    )
                ) from error
            except ValueError as error:
                raise ValidationError(
                    self.env._(
                        "The extra headers of the endpoint %(name)s must be a JSON object "
                        'of texts, e.g. {"Authorization": "Basic ..."}.',
                        name=endpoint.name,
                    )
                ) from error

    @api.constrains("retry_delays")
    def _check_retry_delays(self):
        for endpoint in self:
            try:
                handoff_tools.parse_delays(endpoint.retry_delays or "1m")
            except ValueError as error:
                raise ValidationError(
                    self.env._(
                        "The waits between attempts of the endpoint %(name)s are not "
                        "readable: write them like 1m, 5m, 15m, 1h, 6h, 1d.",
                        name=endpoint.name,
                    )
                ) from error

    # the fields _deal_endpoint_config caches (crm.deal.config.mixin clears
    # it when they change); bridges add theirs (deal_stages_sale: the lines)
    _deal_config_fields = frozenset(
        {"name", "active", "company_id", "send_customer", "send_amount", "send_changes"}
    )

    @api.model
    @tools.ormcache("self.env.lang")
    def _deal_endpoint_config(self):
        """{endpoint id: ``HandoffEndpointConfig``} of every endpoint (archived
        ones too), names in the context's language: the move that writes a
        hand-off reads its endpoint here, not in the database. Cleared when
        these fields of an endpoint change."""
        # configuration shared by every mover (cached), not what a reader sees
        names = sorted(self._deal_config_fields)
        endpoints = self.sudo().with_context(active_test=False).search_fetch([], names)
        return {endpoint.id: HandoffEndpointConfig(endpoint, names) for endpoint in endpoints}

    def _deal_endpoint_settings(self):
        """The cached ``HandoffEndpointConfig`` of the endpoint ``self``; read
        from the record when the cache was filled before it existed."""
        self.ensure_one()
        config = self._deal_endpoint_config().get(self.id)
        if config is None:
            config = HandoffEndpointConfig(self.sudo(), sorted(self._deal_config_fields))
        return config

    def _compute_handoff_count(self):
        counts = dict(
            self.env["crm.deal.handoff"]._read_group(
                [("endpoint_id", "in", self.ids)], ["endpoint_id"], ["__count"]
            )
        )
        for endpoint in self:
            endpoint.handoff_count = counts.get(endpoint, 0)

    def _handoff_extra_headers(self):
        """The extra headers as a dict (ValueError when not a JSON object of
        texts, ``HeaderError`` when HTTP cannot carry one of them)."""
        self.ensure_one()
        text = (self.sudo().extra_headers or "").strip()
        if not text:
            return {}
        headers = json.loads(text)
        if not isinstance(headers, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
        ):
            raise ValueError(text)
        handoff_tools.check_headers(headers)
        return headers

    def _handoff_delays(self):
        self.ensure_one()
        try:
            return handoff_tools.parse_delays(self.retry_delays or "")
        except ValueError:
            return handoff_tools.DEFAULT_RETRY_DELAYS

    def action_rotate_secret(self):
        """Start a rotation: a new secret, the current one kept as the previous.

        Administrators only: the secrets' fields are theirs (field groups).
        """
        for endpoint in self:
            endpoint.write(
                {"secret_previous": endpoint.secret, "secret": handoff_tools.new_secret()}
            )
        return True

    def action_view_handoffs(self):
        ensure_one(self)
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "deal_stages.crm_deal_handoff_action"
        )
        action["domain"] = [("endpoint_id", "=", self.id)]
        action["context"] = {"search_default_filter_open": 0}
        return action
