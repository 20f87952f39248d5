from odoo import api, models
from odoo.exceptions import AccessError


class DealStockDone:
    """Marks stock's own validation (``_action_done``), the one path that may
    set a move done (a Python object: an RPC context cannot carry one)."""

    __slots__ = ()


DEAL_STOCK_DONE = DealStockDone()


class StockMove(models.Model):
    _inherit = "stock.move"

    @api.model_create_multi
    def create(self, vals_list):
        self._deal_verify_done_state(vals_list)
        return super().create(vals_list)

    def write(self, vals):
        self._deal_verify_done_state([vals])
        return super().write(vals)

    def _action_done(self, cancel_backorder=False):
        moves = super(StockMove, self.with_context(deal_stock_done=DEAL_STOCK_DONE))._action_done(
            cancel_backorder=cancel_backorder
        )
        return moves.with_env(self.env)

    def _deal_verify_done_state(self, vals_list):
        """A move is done by validating it, which moves the stock: a user
        without stock rights (a salesperson may write moves, sale_stock's
        access) writing ``state = done`` would prove a delivery to the deal
        with nothing shipped."""
        if (
            not any(vals.get("state") == "done" for vals in vals_list)
            or self.env.su
            or self.env.context.get("deal_stock_done") is DEAL_STOCK_DONE
            or self.env.user.has_group("stock.group_stock_user")
        ):
            return
        raise AccessError(
            self.env._("A transfer is done when it is validated: its status cannot be written.")
        )
