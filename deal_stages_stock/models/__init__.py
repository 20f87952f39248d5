from . import crm_lead
from . import stock_picking
from . import stock_move
