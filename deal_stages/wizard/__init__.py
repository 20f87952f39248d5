from . import crm_deal_force_stage
