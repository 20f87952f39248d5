from . import account_move
from . import account_move_line
from . import crm_deal_order_change
from . import crm_lead
