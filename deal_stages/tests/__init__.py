from . import test_crm_deal_script
from . import test_ui
