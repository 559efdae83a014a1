/** notify's public surface: other modules import only from here. */
export {
  NOTIFICATION_TYPES,
  NOTIFICATION_DATA_BYTES_MAX,
  newNotification,
  notificationPayload,
  notificationTitle,
  notificationLines,
  type Notification,
  type NotificationType,
  type NotificationData,
  type NotificationPayload,
  type NotificationEscalation,
  type SpendNotificationData,
  type TopEntry,
  type TopSpenders,
} from './notification.js'
export {
  RETRY_POLICY_DEFAULT,
  retryDelayMs,
  inboxEntryView,
  type OutboxStore,
  type OutboxItem,
  type OutboxStatus,
  type ClaimedDelivery,
  type InboxStore,
  type InboxQuery,
  type InboxEntry,
  type RetryPolicy,
  type EscalationStore,
  type FiringMark,
} from './outbox.js'
export {
  PREFERENCE_SUBJECT_TYPES,
  notificationPreferencesBodySchema,
  preferenceFromBody,
  preferenceView,
  resolveChannels,
  type NotificationPreference,
  type NotificationPreferencesBody,
  type PreferenceStore,
  type PreferenceSubjectType,
} from './preferences.js'
export { Notifier, type NotificationSink, type NotifierDeps, type EmitResult } from './notifier.js'
export {
  Dispatcher,
  DISPATCHER_OPTIONS_DEFAULT,
  type DispatcherDeps,
  type DispatcherOptions,
  type DeliveryOutcome,
  type DeliveryReport,
} from './dispatcher.js'
export {
  createChannelSender,
  CHANNEL_TIMEOUTS_DEFAULT,
  DeliveryError,
  type ChannelSender,
  type ChannelTimeouts,
} from './channels/channel.js'
export {
  verifySignature,
  signPayload,
  SIGNATURE_HEADER,
  SIGNATURE_TOLERANCE_SECONDS_DEFAULT,
} from './channels/webhook.js'
export { slackMessage, type SlackMessage } from './channels/slack.js'
export { emailContent, type EmailContent } from './channels/email.js'
export { Escalator, escalationOf, type EscalatorDeps } from './escalator.js'
