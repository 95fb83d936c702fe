<?php
/**
 * Driver "sonla" of Roundcube's password plugin: a logged-in user's own change (R6.2, R12.2).
 *
 * Copyright: Sơn La IT center
 * GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * Installed by the sonla.mail.webmail role as plugins/password/drivers/sonla.php. The change goes
 * through sonla-mail-passwd (old and new password on stdin), which applies the collection's one
 * rule set and answers with every broken rule in Vietnamese and English.
 */
class rcube_sonla_password
{
    public function save($curpass, $passwd, $username)
    {
        if (!class_exists('sonla_password')) {
            require_once RCUBE_PLUGINS_DIR . 'sonla_password/sonla_password.php';
        }
        $answer = sonla_password::run('change', [
            'address'      => $username,
            'old_password' => $curpass,
            'new_password' => $passwd,
        ]);
        if (!$answer) {
            return PASSWORD_CONNECT_ERROR;
        }
        if (!empty($answer['changed'])) {
            return PASSWORD_SUCCESS;
        }
        $language = $_SESSION['language'] ?? rcmail::get_instance()->config->get('language');
        $messages = [];
        foreach (sonla_password::describe($answer['violations'] ?? [], $language) as $line) {
            $messages[] = $line['primary'] . ' (' . $line['secondary'] . ') [' . $line['rule'] . ']';
        }
        // PASSWORD_ERROR: its label is translated in every language (the constraint one is not in Vietnamese).
        return ['code' => PASSWORD_ERROR, 'message' => implode(' ', $messages)];
    }
}
