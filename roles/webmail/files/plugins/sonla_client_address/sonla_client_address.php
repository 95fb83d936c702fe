<?php
/**
 * sonla_client_address: Dovecot logs a webmail login with the browser's address, not the webmail's (R9.1).
 *
 * Copyright: Sơn La IT center
 * GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * Installed by the sonla.mail.webmail role (docs/logs.md). Roundcube 1.6 sends an IMAP ID command before it
 * logs in when its connection options carry "preauth_ident"; this plugin puts the browser's address and port
 * there. Dovecot believes x-originating-ip only from its login_trusted_networks (the webmail's loopback), so
 * its "Login:" and "auth failed" lines, and its throttling of failures, name the browser. Submissions get the
 * same address through Postfix's XCLIENT (smtp_xclient_addr in config.inc.php).
 */
class sonla_client_address extends rcube_plugin
{
    public function init()
    {
        $this->add_hook('storage_connect', [$this, 'storage_connect']);
    }

    public function storage_connect($args)
    {
        $address = (string) rcube_utils::remote_addr();
        if (filter_var($address, FILTER_VALIDATE_IP)) {
            $ident = ['x-originating-ip' => $address];
            $port = (int) ($_SERVER['REMOTE_PORT'] ?? 0);
            if ($port > 0) {
                $ident['x-originating-port'] = (string) $port;
            }
            $args['preauth_ident'] = array_merge((array) ($args['preauth_ident'] ?? []), $ident);
        }
        return $args;
    }
}
