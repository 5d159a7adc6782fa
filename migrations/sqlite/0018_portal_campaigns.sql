-- The portal's campaign pages. Campaigns are listed newest first, a page at a time (keyset on
-- created_at, id). A campaign's page shows the sending rate of the last minutes and its
-- bounced recipients: partial indexes, so that neither reads a whole ledger (each holds only
-- rows that were reminded or bounced; importing writes none of them). The rate reads 0017's
-- campaign_recipients_sent (sent_at first: the last minutes of all campaigns are a short range).
CREATE INDEX campaigns_created ON campaigns (created_at, id);
CREATE INDEX campaign_recipients_reminded ON campaign_recipients (campaign_id, reminded_at) WHERE reminded_at IS NOT NULL;
CREATE INDEX campaign_recipients_bounced ON campaign_recipients (campaign_id, seq) WHERE state = 'bounced';
