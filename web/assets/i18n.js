// i18n.js - the console's labels in English and Chinese. The language comes
// from navigator.language (zh* → Chinese) unless the user picked one with the
// toggle (kept in localStorage: a preference, not a secret).
const STR = {
  en: {
    title: 'fota console', skip: 'Skip to content', signin: 'Sign in', signout: 'Sign out', key: 'API key',
    key_help: 'The admin key (DATA/owner.key) or a device owner key. It stays in this browser tab only.',
    bad_key: 'This key was refused.', key_format: 'A key is 40 hexadecimal characters.', products: 'Products', messages: 'Messages', lang: '中文',
    lang_label: 'Switch language', loading: 'Loading…', none: 'None yet.', back: 'Back',
    id: 'Id', name: 'Name', serial: 'Serial', status: 'Status', description: 'Description',
    activated_total: 'Activated / Total', flash_map: 'Flash map', create_product: 'Create product',
    create: 'Create', created_product: 'Product {0} created.',
    releases: 'ROM releases', current: 'Current version', release: 'Release', version: 'Version',
    codename: 'Codename', codename_help: 'Your own release name; optional.', changelog: 'Changelog',
    files: 'ROM files', files_help: 'Upload ROM files, up to 10 (user1.bin and user2.bin for two-slot products).',
    file_n: 'File {0}', add_file: 'Add a file', remove_file: 'Remove file {0}', save: 'Save', cancel: 'Cancel',
    uploading: 'Uploading… {0}%', released: 'Version {0} released.', set_current: 'Set as current version',
    confirm_current: 'Make {0} the current version of {1}? Devices running an older version will be told an update is available.',
    now_current: '{0} is now the current version.', no_files: 'Choose at least one file.',
    product_key: 'Product key', product_key_help: '(read-only release listing and download, for AT-style firmware)',
    devices: 'Devices', filter_devices: 'Filter devices', devices_more: 'Showing {0} of {1}: narrow the filter.', add_device: 'Add device', bssid: 'BSSID (optional)', rom_version: 'ROM version',
    slot: 'Slot', online: 'Online', offline: 'Offline', last_active: 'Last active', never: 'never',
    keys_once: 'Keys of device {0}. They are shown only now: store them safely.',
    master_key: 'Master device key', owner_key: 'Owner key', download_bin: 'Download master_device_key.bin',
    device: 'Device', product: 'Product', activated: 'Activated', yes: 'yes', no: 'no',
    rom_line: 'The ROM version of this device is {0}; it can be upgraded to', upgrade: 'Upgrade',
    no_newer: 'No other release to upgrade to.', reboot: 'Reboot',
    queued: 'Queued: the device is offline; the command is delivered when it connects.',
    sent: 'Sent to the device.', upgrade_done: 'The device downloaded and checked {0}. Reboot it to run the new version.',
    upgrade_failed: 'The upgrade to {0} failed: {1}', rpc: 'RPC request',
    rpc_help: 'Send any action to the device, with parameters (one name=value per line).',
    action: 'Action', params: 'Parameters', request: 'Request', response: 'Response',
    history: 'Upgrade history', progress: 'Download {0}', dl_of: '{0} of {1}',
    dl_downloading: 'downloading', dl_complete: 'complete', dl_aborted: 'aborted', feed: 'Messages', older: 'Older messages', live: 'live',
    reconnecting: 'reconnecting…', all_products: 'All products', filter_product: 'Product',
    unknown_version: 'unknown', device_x: 'device {0}', slot_user: 'user{0}',
    msg_update: 'Device {0} has version {1} update', msg_upgraded: 'Device {0} upgraded to version {1}',
    msg_failed: 'Device {0} failed to upgrade to {1}: {2}', msg_online: 'Device {0} is online',
    msg_offline: 'Device {0} went offline', msg_rebooted: 'Device {0} rebooted',
    msg_activated: 'Device {0} activated', msg_released: 'Version {0} released ({1} files)', msg_other: 'Device {0}: {1}',
    error: 'Error: {0}', not_found: 'Not found.', state: 'State', when: 'Time',
    signed_in_as_owner: 'Signed in with the owner key of device {0}.',
    delete_release: 'Delete', delete_product: 'Delete product', delete_device: 'Delete device',
    confirm_delete_release: 'Delete release {0} of {1}? Its files are removed from the server unless another release uses them. This cannot be undone.',
    confirm_delete_product: 'Delete product {0}? This cannot be undone.',
    confirm_delete_device: 'Delete device {0}? Its keys stop working at once and it is disconnected. This cannot be undone.',
    deleted_release: 'Release {0} deleted.', deleted_product: 'Product {0} deleted.', deleted_device: 'Device {0} deleted.',
    rollouts: 'Rollouts', rollout: 'Roll out a version', rollout_start: 'Roll out',
    ro_help: 'Upgrade every device of this product that matches. Devices already on the version are left out; offline ones get it when they connect.',
    ro_from: 'Only devices on', ro_from_help: 'Their current ROM version.', ro_any: 'any version',
    ro_online: 'Only devices online now', ro_reboot: 'Reboot each device once it reports success',
    ro_window: 'At most at once', ro_window_help: 'Devices downloading at the same time.', ro_window_bad: 'At most at once: a number from 1 to 100000.',
    ro_confirm: 'Roll out {0} to the matching devices of this product?',
    ro_started: 'Rollout {0} started: {1} devices ({2} already on it).', ro_title: 'Rollout {0} · {1}',
    ro_state_running: 'running', ro_state_finished: 'finished', ro_state_interrupted: 'interrupted',
    ro_upgraded: '{0}/{1} upgraded', ro_in_progress: '{0} in progress', ro_waiting: '{0} waiting',
    ro_queued: '{0} offline (queued)', ro_failed: '{0} failed', ro_timed_out: '{0} timed out', ro_deleted: '{0} deleted',
    ro_cancelled: '{0} cancelled', ro_state_cancelling: 'cancelling', ro_state_cancelled: 'cancelled', ro_cancel: 'Cancel',
    ro_confirm_cancel: 'Cancel rollout {0} ({1})? Devices not pushed yet get nothing; those already downloading finish.',
    ro_cancelled_now: 'Rollout {0} cancelled: {1} devices dropped.',
    ro_max_fail: 'Stop after failures', ro_max_fail_help: 'Stop the rollout once more devices than this fail or time out; empty: never.',
    ro_max_fail_bad: 'Stop after failures: empty, or a number from 0 to 100000.', ro_halted: 'stopped: more than {0} failed',
  },
  zh: {
    title: 'fota 控制台', skip: '跳到内容', signin: '登录', signout: '退出', key: '密钥',
    key_help: '管理员密钥（DATA/owner.key）或设备的 owner key。只保存在当前浏览器标签页中。',
    bad_key: '密钥无效。', key_format: '密钥是 40 个十六进制字符。', products: '产品管理', messages: '消息', lang: 'English',
    lang_label: '切换语言', loading: '加载中…', none: '暂无。', back: '返回',
    id: 'Id', name: '名称', serial: 'Serial', status: '状态', description: '描述',
    activated_total: '已激活 / 总数', flash_map: 'Flash 布局', create_product: '创建产品',
    create: '创建', created_product: '已创建产品 {0}。',
    releases: 'ROM 发布', current: '当前版本', release: '发布', version: '版本',
    codename: '发布代号', codename_help: '自定义的发布代号，不填也可以。', changelog: '更新说明',
    files: 'ROM 文件', files_help: '上传 rom 文件，支持最多 10 个文件（双分区产品需 user1.bin 和 user2.bin）。',
    file_n: '文件 {0}', add_file: '添加文件', remove_file: '删除文件 {0}', save: '保存', cancel: '取消',
    uploading: '上传中… {0}%', released: '已发布版本 {0}。', set_current: '设置为当前版本',
    confirm_current: '将 {0} 设置为 {1} 的当前版本？运行旧版本的设备将收到更新消息。',
    now_current: '{0} 已成为当前版本。', no_files: '请至少选择一个文件。',
    product_key: 'Product key', product_key_help: '（只读：列出和下载 ROM，供 AT 类固件使用）',
    devices: '设备', filter_devices: '筛选设备', devices_more: '显示 {1} 个中的 {0} 个，请缩小筛选范围。', add_device: '添加设备', bssid: 'BSSID（可选）', rom_version: 'ROM 版本',
    slot: '分区', online: '在线', offline: '离线', last_active: '最后活动', never: '从未',
    keys_once: '设备 {0} 的密钥只显示这一次，请妥善保存。',
    master_key: 'Master device key', owner_key: 'Owner key', download_bin: '下载 master_device_key.bin',
    device: '设备', product: '产品', activated: '已激活', yes: '是', no: '否',
    rom_line: '当前设备的 ROM 版本是 {0}，可以升级到', upgrade: '升级',
    no_newer: '没有可升级的版本。', reboot: '重启',
    queued: '已排队：设备离线，连接后将收到该指令。', sent: '已发送到设备。',
    upgrade_done: '设备已下载并校验 {0}，重启后运行新版本。', upgrade_failed: '升级到 {0} 失败：{1}', rpc: 'RPC 请求',
    rpc_help: '可以发送任意的 action 到设备，附带参数（每行一个 name=value）。',
    action: 'action', params: '请求参数', request: '请求', response: '响应',
    history: '升级记录', progress: '下载 {0}', dl_of: '{0} / {1}',
    dl_downloading: '下载中', dl_complete: '已完成', dl_aborted: '已中断', feed: '消息', older: '更早的消息', live: '实时',
    reconnecting: '重新连接中…', all_products: '全部产品', filter_product: '产品',
    unknown_version: '未知', device_x: '设备 {0}', slot_user: 'user{0}',
    msg_update: '设备 {0} 有版本 {1} 更新', msg_upgraded: '设备 {0} 升级到 {1} 版本',
    msg_failed: '设备 {0} 升级到 {1} 失败：{2}', msg_online: '设备 {0} 上线',
    msg_offline: '设备 {0} 离线', msg_rebooted: '设备 {0} 已重启',
    msg_activated: '设备 {0} 已激活', msg_released: '已发布版本 {0}（{1} 个文件）', msg_other: '设备 {0}：{1}',
    error: '错误：{0}', not_found: '未找到。', state: '状态', when: '时间',
    signed_in_as_owner: '已用设备 {0} 的 owner key 登录。',
    delete_release: '删除', delete_product: '删除产品', delete_device: '删除设备',
    confirm_delete_release: '删除 {1} 的版本 {0}？没有其他版本使用的文件将从服务器删除。此操作不可撤销。',
    confirm_delete_product: '删除产品 {0}？此操作不可撤销。',
    confirm_delete_device: '删除设备 {0}？它的密钥立即失效，连接会被断开。此操作不可撤销。',
    deleted_release: '已删除版本 {0}。', deleted_product: '已删除产品 {0}。', deleted_device: '已删除设备 {0}。',
    rollouts: '批量升级', rollout: '批量升级到一个版本', rollout_start: '开始升级',
    ro_help: '升级本产品所有符合条件的设备。已是该版本的设备不升级；离线设备在连接时收到。',
    ro_from: '仅限当前版本', ro_from_help: '设备当前的 ROM 版本。', ro_any: '任意版本',
    ro_online: '仅限在线设备', ro_reboot: '设备报告成功后重启',
    ro_window: '同时升级数', ro_window_help: '同时下载的设备数。', ro_window_bad: '同时升级数：1 到 100000 的数字。',
    ro_confirm: '将本产品符合条件的设备升级到 {0}？',
    ro_started: '批量升级 {0} 已开始：{1} 台设备（{2} 台已是该版本）。', ro_title: '批量升级 {0} · {1}',
    ro_state_running: '进行中', ro_state_finished: '已完成', ro_state_interrupted: '已中断',
    ro_upgraded: '已升级 {0}/{1}', ro_in_progress: '{0} 台升级中', ro_waiting: '{0} 台等待',
    ro_queued: '{0} 台离线（排队）', ro_failed: '{0} 台失败', ro_timed_out: '{0} 台超时', ro_deleted: '{0} 台已删除',
    ro_cancelled: '{0} 台已取消', ro_state_cancelling: '取消中', ro_state_cancelled: '已取消', ro_cancel: '取消',
    ro_confirm_cancel: '取消批量升级 {0}（{1}）？尚未推送的设备不再升级；正在下载的设备会完成。',
    ro_cancelled_now: '批量升级 {0} 已取消：{1} 台设备不再升级。',
    ro_max_fail: '失败上限', ro_max_fail_help: '失败或超时的设备超过此数时停止批量升级；留空：不限。',
    ro_max_fail_bad: '失败上限：留空，或 0 到 100000 的数字。', ro_halted: '已停止：超过 {0} 台失败',
  },
};

let lang = (() => {
  try {
    const saved = localStorage.getItem('fota.lang');
    if (saved === 'en' || saved === 'zh') return saved;
  } catch (e) { /* storage may be disabled */ }
  return /^zh/i.test(navigator.language || '') ? 'zh' : 'en';
})();

export function getLang() { return lang; }

export function setLang(l) {
  lang = l === 'zh' ? 'zh' : 'en';
  try { localStorage.setItem('fota.lang', lang); } catch (e) { /* ignore */ }
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}

// t('msg_update', 'dev-1', 'v1.1'): the label with {0}, {1}… filled in.
export function t(key, ...args) {
  const s = (STR[lang] && STR[lang][key]) || STR.en[key] || key;
  return s.replace(/\{(\d)\}/g, (m, i) => (args[i] === undefined ? m : String(args[i])));
}
