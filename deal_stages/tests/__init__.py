from . import test_crm_deal_script
from . import test_deal_engine
from . import test_performances
from . import test_ui
from . import test_deal_customer_messages
from . import test_deal_portal
from . import test_deal_control_reports
from . import test_deal_control_ui
