"""Track the shop's tables with the audit schema's own SQL API.

Interim: until django_bridge's declarative tracking lands, the capture
triggers come from audit.enable_tracking, which the app role may call on the
tables it owns. The card token never reaches the log.
"""

from django.db import migrations

TRACK = """
SELECT audit.enable_tracking(target => 'shop_product'::regclass);
SELECT audit.enable_tracking(target => 'shop_order'::regclass,
                             exclude_columns => '{card_token}');
"""
UNTRACK = """
SELECT audit.disable_tracking(target => 'shop_order'::regclass);
SELECT audit.disable_tracking(target => 'shop_product'::regclass);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("shop", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(TRACK, UNTRACK),
    ]
