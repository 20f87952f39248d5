from . import crm_lead
from . import sale_order
from . import crm_deal_handoff_endpoint
