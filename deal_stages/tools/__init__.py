# Plain Python of the engine: no Odoo model here.
