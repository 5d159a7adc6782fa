-- The reminder's delivery is kept beside the invitation's: `sent_at`/`reply` are the
-- invitation's, `reminded_at`/`reminder_reply` the reminder's (before, the reminder's send
-- overwrote the invitation's).
ALTER TABLE campaign_recipients ADD COLUMN reminded_at INTEGER;
ALTER TABLE campaign_recipients ADD COLUMN reminder_reply TEXT;

-- Rows whose reminder was sent before this migration: `sent_at` (at or after the reminder was
-- due) and `reply` are the reminder's. They move; the invitation's time is taken as when the
-- reminder was due less the campaign's delay (exact unless the reminder was retried), and its
-- reply is unknown.
UPDATE campaign_recipients
   SET reminded_at = sent_at,
       reminder_reply = reply,
       reply = NULL,
       sent_at = due_at - COALESCE((SELECT reminder_after FROM campaigns c WHERE c.id = campaign_recipients.campaign_id), 0)
 WHERE phase = 1 AND sent_at IS NOT NULL AND sent_at >= due_at AND state NOT IN ('pending', 'sending');
